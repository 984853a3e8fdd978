"""The verbs of the `dist-caffe` command, one module each (see dist_caffe/cli.py)."""
