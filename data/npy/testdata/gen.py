# Regenerates the .npy fixtures of data/npy with real numpy (any 1.x/2.x):
#   python gen.py   (run inside this directory)
import numpy as np

a = (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) / 4
np.save("f4_2x3.npy", a)
np.save("f2_4.npy", np.array([1.0, -2.5, 65504.0, 6e-8], dtype=np.float16))
np.save("f8_2.npy", np.array([1.0, 2.0], dtype=np.float64))
np.save("f4_fortran.npy", np.asfortranarray(a))
np.save("f4_bigendian.npy", a.astype(">f4"))
np.save("f4_nan.npy", np.array([1.0, np.nan, np.inf], dtype=np.float32))
np.lib.format.write_array(open("f4_v2.npy", "wb"), a, version=(2, 0))
np.save("f4_scalar.npy", np.float32(3.5))
