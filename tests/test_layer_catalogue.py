"""Every standard BVLC Caffe 1.0 layer type is registered (WindowData and cuDNN variants aside)."""
import dist_caffe

# BVLC Caffe 1.0's REGISTER_LAYER_CLASS types (plus Python, registered when built with
# WITH_PYTHON_LAYER), by the issue that builds each here.
BVLC_1_0 = {
    "core layers (vision, neuron, loss, data issues)": [
        "Convolution", "Pooling", "LRN", "InnerProduct",
        "ReLU", "Sigmoid", "TanH", "Dropout", "BatchNorm", "Scale", "Bias", "Eltwise", "Concat",
        "Slice", "Flatten", "Reshape",
        "Softmax", "SoftmaxWithLoss", "EuclideanLoss", "Accuracy", "Input", "DummyData", "Split",
        "Silence",
        "Data", "ImageData",
    ],
    "catalogue issue": [
        "Deconvolution", "Crop", "SPP", "Im2col",
        "PReLU", "ELU", "AbsVal", "BNLL", "Power", "Exp", "Log", "Threshold",
        "Embed", "Tile", "Reduction", "ArgMax", "MVN", "BatchReindex", "Filter", "Parameter",
        "SigmoidCrossEntropyLoss", "HingeLoss", "InfogainLoss", "ContrastiveLoss",
        "MultinomialLogisticLoss",
        "RNN", "LSTM", "LSTMUnit",
        "MemoryData", "HDF5Data", "HDF5Output", "Python",
    ],
}
# Added to BVLC master after the 1.0 release; the catalogue issue builds them too.
BVLC_LATER = ["Clip", "Swish"]
EXCLUDED = ["WindowData"]  # and the CuDNN* engines, which are implementations, not types


def test_layer_catalogue_is_complete():
    registered = set(dist_caffe.layer_types())
    standard = [t for group in BVLC_1_0.values() for t in group]
    assert len(standard) == len(set(standard))
    lines = []
    for group, types in BVLC_1_0.items():
        missing = [t for t in types if t not in registered]
        lines.append(f"  {group}: {len(types) - len(missing)}/{len(types)}"
                     + (f" (missing: {', '.join(missing)})" if missing else ""))
    have = sum(t in registered for t in standard)
    later = sum(t in registered for t in BVLC_LATER)
    extra = sorted(registered - set(standard) - set(BVLC_LATER))
    print(f"\nlayer types: {have}/{len(standard)} of BVLC Caffe 1.0's standard list "
          f"(excluding {', '.join(EXCLUDED)} and cuDNN variants), "
          f"+ {later}/{len(BVLC_LATER)} later BVLC additions ({', '.join(BVLC_LATER)})")
    print("\n".join(lines))
    if extra:
        print(f"  also registered: {', '.join(extra)}")
    missing = [t for t in standard + BVLC_LATER if t not in registered]
    assert not missing, f"layer types not registered: {', '.join(missing)}"

