"""kernels/im2col.cu against a numpy im2col built from padding and strided slices, and
col2im against that reference's adjoint (each column entry added back into the image)."""
import numpy as np
import pytest

from .conftest import tol

F = "im2col.cu"


def out_size(size, k, pad, stride, dil):
    return (size + 2 * pad - (dil * (k - 1) + 1)) // stride + 1


def ref_im2col(x, k, pad, stride, dil):
    """x (num, C, H, W) -> (num, C*kh*kw, Hc*Wc), Caffe's column layout."""
    (kh, kw), (ph, pw), (sh, sw), (dh, dw) = k, pad, stride, dil
    num, c, h, w = x.shape
    hc, wc = out_size(h, kh, ph, sh, dh), out_size(w, kw, pw, sw, dw)
    # pad generously so slices that start inside the pad never run off the array
    padded = np.zeros((num, c, h + 2 * ph + dh * kh + sh * hc, w + 2 * pw + dw * kw + sw * wc), x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    col = np.zeros((num, c, kh, kw, hc, wc), x.dtype)
    for i in range(kh):
        for j in range(kw):
            col[:, :, i, j] = padded[:, :, i * dh:i * dh + sh * hc:sh, j * dw:j * dw + sw * wc:sw]
    return col.reshape(num, c * kh * kw, hc * wc)


def ref_col2im(col, shape, k, pad, stride, dil):
    (kh, kw), (ph, pw), (sh, sw), (dh, dw) = k, pad, stride, dil
    num, c, h, w = shape
    hc, wc = out_size(h, kh, ph, sh, dh), out_size(w, kw, pw, sw, dw)
    padded = np.zeros((num, c, h + 2 * ph + dh * kh + sh * hc, w + 2 * pw + dw * kw + sw * wc), col.dtype)
    col = col.reshape(num, c, kh, kw, hc, wc)
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i * dh:i * dh + sh * hc:sh, j * dw:j * dw + sw * wc:sw] += col[:, :, i, j]
    return padded[:, :, ph:ph + h, pw:pw + w]


# (num, C, H, W), kernel, pad, stride, dilation
CASES = [
    ((1, 1, 1, 1), (1, 1), (0, 0), (1, 1), (1, 1)),
    ((1, 3, 5, 5), (3, 3), (0, 0), (1, 1), (1, 1)),
    ((2, 3, 7, 6), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((2, 2, 9, 11), (3, 2), (1, 0), (2, 3), (1, 1)),        # odd sizes, rectangular everything
    ((1, 3, 11, 11), (11, 11), (0, 0), (4, 4), (1, 1)),     # CaffeNet conv1-like, window = image
    ((2, 4, 8, 9), (3, 3), (2, 2), (1, 1), (2, 2)),         # dilation 2 with matching pad
    ((1, 2, 10, 7), (2, 3), (3, 1), (3, 2), (3, 2)),        # pad past the kernel extent
    ((3, 1, 6, 6), (5, 5), (2, 2), (3, 3), (1, 1)),         # last window hangs in the pad
    ((1, 5, 4, 13), (1, 1), (0, 0), (2, 2), (1, 1)),        # 1x1 strided (ResNet shortcut)
    ((2, 2, 5, 5), (3, 3), (4, 4), (1, 1), (1, 1)),         # windows entirely in the pad
]


def args(shape, k, pad, stride, dil, layout="caffe"):
    """The kernel arguments after the image: geometry, then the column strides of `layout`."""
    num, c, h, w = shape
    hc = out_size(h, k[0], pad[0], stride[0], dil[0])
    wc = out_size(w, k[1], pad[1], stride[1], dil[1])
    rows, p = c * k[0] * k[1], hc * wc
    strides = {"caffe": (rows * p, p, 1), "images": (p, num * p, 1), "batch_inner": (1, p * num, num)}
    return (c, h, w, *k, *pad, *stride, *dil, hc, wc, *strides[layout])


def to_layout(col, layout):
    """(num, rows, P) reference columns in a layout's memory order."""
    num, rows, p = col.shape
    if layout == "images":
        return col.transpose(1, 0, 2).reshape(rows, num * p)
    if layout == "batch_inner":
        return col.transpose(1, 2, 0).reshape(rows, p * num)
    return col


def work(shape, a):
    """Threads of im2col: num * channels * height_col * width_col."""
    return shape[0] * shape[1] * a[11] * a[12]


LAYOUTS = ["caffe", "images", "batch_inner"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=[str(c[0]) + str(c[1:]) for c in CASES])
def test_im2col(dev, dtype, case, layout):
    shape, k, pad, stride, dil = case
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    expected = to_layout(ref_im2col(x, k, pad, stride, dil), layout)
    a = args(*case, layout)
    col, = dev.run(F, "im2col_im2col", work(shape, a), x, *a, np.full(expected.shape, np.nan, dtype))[1:]
    np.testing.assert_array_equal(col, expected)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=[str(c[0]) + str(c[1:]) for c in CASES])
def test_col2im(dev, dtype, case, layout):
    shape, k, pad, stride, dil = case
    a = args(*case, layout)
    col = np.random.default_rng(1).standard_normal(
        (shape[0], shape[1] * k[0] * k[1], a[11] * a[12])).astype(dtype)
    expected = ref_col2im(col.astype(np.float64), shape, k, pad, stride, dil)
    im, = dev.run(F, "im2col_col2im", int(np.prod(shape)), np.ascontiguousarray(to_layout(col, layout)),
                  *a, np.full(shape, np.nan, dtype))[1:]
    np.testing.assert_allclose(im, expected, **tol(dtype))


def test_col2im_is_the_adjoint_of_im2col(dev):
    case = ((2, 3, 9, 8), (3, 2), (1, 2), (2, 1), (2, 3))
    shape, a = case[0], args(*case)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    c = rng.standard_normal((shape[0], shape[1] * 6, a[11] * a[12]))
    col, = dev.run(F, "im2col_im2col", work(shape, a), x, *a, np.zeros(c.shape))[1:]
    im, = dev.run(F, "im2col_col2im", x.size, c, *a, np.zeros(shape))[1:]
    np.testing.assert_allclose(np.vdot(col, c), np.vdot(x, im), rtol=1e-12)


def test_batched_equals_per_image(dev):
    """num images in one launch = Caffe's one launch per image, each into its own columns."""
    case = ((3, 2, 7, 7), (3, 3), (1, 1), (2, 2), (1, 1))
    shape, a = case[0], args(*case)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    p = a[11] * a[12]
    whole, = dev.run(F, "im2col_im2col", work(shape, a), x, *a, np.zeros((3, 18, p), np.float32))[1:]
    one_args = args((1,) + shape[1:], *case[1:])
    for i in range(shape[0]):
        one, = dev.run(F, "im2col_im2col", work((1,) + shape[1:], one_args), x[i:i + 1], *one_args,
                       np.zeros((18, p), np.float32))[1:]
        np.testing.assert_array_equal(whole[i], one)


def test_matches_the_layers_numpy_im2col(dev):
    """Same numbers as dist_caffe.im2col (the Convolution layer's xp path) in its two layouts."""
    im2col_py = pytest.importorskip("dist_caffe.im2col")
    case = ((2, 3, 9, 7), (3, 2), (1, 0), (2, 1), (1, 2))
    shape, k, pad, stride, dil = case
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    g = im2col_py.ConvGeometry(shape[2:], k, stride, pad, dil)
    for layout, batch_inner in (("images", False), ("batch_inner", True)):
        expected = im2col_py.im2col(x, g, batch_inner)
        a = args(*case, layout)
        col, = dev.run(F, "im2col_im2col", work(shape, a), x, *a, np.zeros(expected.shape, np.float32))[1:]
        np.testing.assert_array_equal(col, expected)
        dcol = np.random.default_rng(5).standard_normal(expected.shape).astype(np.float32)
        im, = dev.run(F, "im2col_col2im", x.size, dcol, *a, np.zeros(shape, np.float32))[1:]
        np.testing.assert_allclose(im, im2col_py.col2im(dcol, g, shape[0], shape[1], batch_inner),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size, k, pad, stride, dil, group", [
    ((7, 6), (3, 3), (1, 1), (2, 2), (1, 1), 2),
    ((8, 7), (3, 2), (2, 1), (1, 1), (2, 2), 1),
    ((4, 5, 6), (2, 3, 2), (1, 1, 1), (2, 2, 2), (1, 1, 1), 1),   # 3-D
    ((9,), (3,), (1,), (1,), (1,), 3),                             # 1-D
])
def test_im2row_is_im2col_transposed_per_group(size, k, pad, stride, dil, group):
    """im2row holds im2col's entries: row (n, position), column (group, offset, channel)."""
    from dist_caffe.im2col import ConvGeometry, im2col, im2row
    num, channels = 3, 6
    x = np.random.default_rng(5).standard_normal((num, channels) + size)
    g = ConvGeometry(size, k, stride, pad, dil)
    rows = im2row(x, g, group)
    cols = im2col(x, g)   # rows (channel, offset), columns (n, position)
    kk, cg = g.kernel_count, channels // group
    assert rows.shape == (num * g.out_count, channels * kk)
    want = cols.reshape(group, cg, kk, num * g.out_count).transpose(3, 0, 2, 1)
    np.testing.assert_array_equal(rows.reshape(num * g.out_count, group, kk, cg), want)
