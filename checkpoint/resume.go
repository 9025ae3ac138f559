package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
)

// Find resolves --resume: "" starts fresh; "auto" picks the newest
// checkpoint under root (fresh if there is none), which must pass
// validation — a damaged newest checkpoint is an error naming the newest
// older one that passes, never a silent fallback; anything else is a
// checkpoint directory that must pass validation.
func Find(root, resume string) (string, error) {
	switch resume {
	case "":
		return "", nil
	case "auto":
		steps, err := List(root)
		if err != nil || len(steps) == 0 {
			return "", err
		}
		newest := filepath.Join(root, StepDir(steps[len(steps)-1]))
		_, err = Read(newest)
		if err == nil {
			return newest, nil
		}
		hint := "no older checkpoint under " + root + " passes validation either"
		for i := len(steps) - 2; i >= 0; i-- {
			dir := filepath.Join(root, StepDir(steps[i]))
			if _, verr := Read(dir); verr == nil {
				hint = fmt.Sprintf("the newest older checkpoint that passes validation is %s: resume from it with --resume %s (the newer ones are then moved aside)", dir, dir)
				break
			}
		}
		return "", fmt.Errorf("%w: --resume auto: the newest checkpoint %s fails validation: %w; %s", ErrResume, newest, err, hint)
	}
	if hint := notACheckpoint(resume); hint != "" {
		return "", fmt.Errorf("%w: --resume %s: %s", ErrResume, resume, hint)
	}
	if _, err := Read(resume); err != nil {
		return "", fmt.Errorf("%w: --resume %s: %w", ErrResume, resume, err)
	}
	return resume, nil
}

// notACheckpoint says what --resume PATH names when it is not a checkpoint
// directory: nothing at all (a typo of auto?), a run directory or a
// checkpoints folder (which checkpoint to give instead); "" when PATH may
// be a checkpoint (it is then validated).
func notACheckpoint(path string) string {
	info, err := os.Stat(path)
	if err != nil {
		return "no such checkpoint directory (--resume auto resumes the newest checkpoint of run.output_dir; a path must be a checkpoints/step-NNNNNNN directory)"
	}
	if !info.IsDir() {
		return "not a directory: a checkpoint is a checkpoints/step-NNNNNNN directory"
	}
	if _, err := os.Stat(filepath.Join(path, StateFile)); err == nil {
		return ""
	}
	for _, root := range []string{filepath.Join(path, "checkpoints"), path} {
		steps, err := List(root)
		if err != nil || len(steps) == 0 {
			continue
		}
		newest := filepath.Join(root, StepDir(steps[len(steps)-1]))
		return fmt.Sprintf("a run directory or checkpoints folder, not a checkpoint: give one of its checkpoints (the newest is %s), or --resume auto with this run.output_dir", newest)
	}
	return ""
}

// AbandonNewer moves the checkpoints under root newer than step (the branch
// a resume from an older checkpoint abandons) into
// root/abandoned-<UTC time>/, so that rotation, `latest` and --resume auto
// follow the new branch; nothing is deleted. It returns the new folder, or
// "" when there was nothing to move.
func AbandonNewer(root string, step int, log logrus.FieldLogger) (string, error) {
	steps, err := List(root)
	if err != nil {
		return "", err
	}
	var newer []int
	for _, s := range steps {
		if s > step {
			newer = append(newer, s)
		}
	}
	if len(newer) == 0 {
		return "", nil
	}
	base := filepath.Join(root, "abandoned-"+time.Now().UTC().Format("20060102T150405Z"))
	aside := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(aside); os.IsNotExist(err) {
			break
		}
		aside = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.MkdirAll(aside, 0o755); err != nil {
		return "", err
	}
	for _, s := range newer {
		if err := os.Rename(filepath.Join(root, StepDir(s)), filepath.Join(aside, StepDir(s))); err != nil {
			return aside, err
		}
	}
	log.WithFields(logrus.Fields{"moved": len(newer), "from_step": newer[0], "to_step": newer[len(newer)-1], "to": aside}).
		Warn("resuming from an older checkpoint: the newer checkpoints of the abandoned branch were moved aside")
	return aside, nil
}
