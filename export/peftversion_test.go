package export

import (
	"encoding/json"
	"testing"
)

// writerRule: peft_version first, else the fields the writer's LoraConfig had.
func TestWriterRule(t *testing.T) {
	cases := []struct {
		name, config string
		want         patternRule
		bad          bool
	}{
		{"0.13.2's fields", `{"r":4,"rank_pattern":{}}`, rule013, false},
		{"peft_version 0.21.2", `{"peft_version":"0.21.2"}`, rule015, false},
		{"peft_version dev build", `{"peft_version":"0.18.0.dev0@0123abc"}`, rule015, false},
		{"peft_version 1.0", `{"peft_version":"1.0.0"}`, rule015, false},
		{"peft_version 0.14", `{"peft_version":"0.14.0","corda_config":null}`, rule014, false},
		{"peft_version 0.13 beats the fields", `{"peft_version":"0.13.2","corda_config":null}`, rule013, false},
		{"peft_version null: the fields", `{"peft_version":null,"lora_bias":false}`, rule014, false},
		{"0.14's fields", `{"exclude_modules":null,"eva_config":null,"lora_bias":false}`, rule014, false},
		{"0.15's fields", `{"lora_bias":false,"trainable_token_indices":null}`, rule015, false},
		{"0.17's fields", `{"target_parameters":null}`, rule015, false},
		{"peft_version garbage", `{"peft_version":"v0.21"}`, 0, true},
		{"peft_version number", `{"peft_version":0.21}`, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var raw map[string]json.RawMessage
			if err := json.Unmarshal([]byte(c.config), &raw); err != nil {
				t.Fatal(err)
			}
			got, err := writerRule(raw)
			if c.bad {
				if err == nil {
					t.Fatalf("accepted as %v", got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}
