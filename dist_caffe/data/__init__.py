"""The input pipeline: Datum records, sharded LMDB reading, transforms, prefetch, converters.

| module        | does |
|---------------|------|
| datum         | Datum <-> CHW numpy (raw, float, encoded JPEG/PNG via Pillow, BGR as Caffe) |
| sharding      | which record indices each rank reads per epoch (the padding rule) |
| lmdb_reader   | a rank's shard of an LMDB by cursor seeks, never a full scan |
| lmdb_writer   | writing LMDBs like Caffe's tools, atomically |
| transformer   | Caffe's DataTransformer: crop -> mirror -> mean -> scale |
| prefetch      | background thread, bounded batch buffers, consumer wait times |
| workers       | the decode worker processes (forkserver pool, shared-memory output) |
| options       | DIST_CAFFE_* switches: skip_corrupt, shuffle, shuffle_seed, decode_workers |
| convert       | what the converter tools share |

The layers are dist_caffe/layers/data.py (Data) and image_data.py (ImageData); the tools
are dist_caffe/tools/{convert_imageset,compute_image_mean,convert_mnist,convert_cifar10,
datasets,bench_data}.py.
"""
