// Copies between blobs of different shapes: Concat, Slice, Crop, Tile (Caffe's
// concat_layer.cu, slice_layer.cu, crop_layer.cu, tile_layer.cu).
#include "common.cuh"

// Where item `index` of a small blob (num_pieces x small_axis x piece_size) sits in the big
// blob (num_pieces x big_axis x piece_size), at `offset` along the axis.
__device__ __forceinline__ long long dc_piece_index(const int index, const int piece_size,
                                                    const int small_axis, const int big_axis,
                                                    const int offset) {
  const int total = piece_size * small_axis;
  return (long long)(index / total * big_axis + offset) * piece_size + index % total;
}

// Concat, n = bottom count. forward: top[at(i)] = bottom[i]; else bottom_diff[i] = top_diff[at(i)].
// concat_size = count after the axis, num_concats = count before it.
DC_KERNEL_FD(copy_concat, (const int n, const T* in, const int forward, const int num_concats,
                           const int concat_size, const int top_concat_axis,
                           const int bottom_concat_axis, const int offset_concat_axis, T* out), {
  CUDA_KERNEL_LOOP(index, n) {
    const long long top_index =
        dc_piece_index(index, concat_size, bottom_concat_axis, top_concat_axis, offset_concat_axis);
    if (forward) {
      out[top_index] = in[index];
    } else {
      out[index] = in[top_index];
    }
  }
})

// Slice, n = top count. forward: top[i] = bottom[at(i)]; else bottom_diff[at(i)] = top_diff[i].
DC_KERNEL_FD(copy_slice, (const int n, const T* in, const int forward, const int num_slices,
                          const int slice_size, const int bottom_slice_axis,
                          const int top_slice_axis, const int offset_slice_axis, T* out), {
  CUDA_KERNEL_LOOP(index, n) {
    const long long bottom_index =
        dc_piece_index(index, slice_size, top_slice_axis, bottom_slice_axis, offset_slice_axis);
    if (forward) {
      out[index] = in[bottom_index];
    } else {
      out[bottom_index] = in[index];
    }
  }
})

// Crop, n = top count, any number of axes. dims (int32, 3 * num_axes): the top's shape, the
// bottom's strides (in elements), the crop offsets (0 on axes before crop_param.axis).
// forward: top[i] = bottom[src(i)]; else bottom_diff[src(i)] = top_diff[i] (the layer zeroes
// bottom_diff first: the cropped-away border gets no gradient).
DC_KERNEL_FD(copy_crop, (const int n, const T* in, const int forward, const int num_axes,
                         const int* dims, T* out), {
  CUDA_KERNEL_LOOP(index, n) {
    long long src = 0;
    int rest = index;
    for (int d = num_axes - 1; d >= 0; --d) {
      const int i = rest % dims[d];
      rest /= dims[d];
      src += (long long)(i + dims[2 * num_axes + d]) * dims[num_axes + d];
    }
    if (forward) {
      out[index] = in[src];
    } else {
      out[src] = in[index];
    }
  }
})

// Tile, n = top count: the block of `inner` values (the bottom's count from the tile axis on)
// repeated `tiles` times: top[(o * tiles + t) * inner + d] = bottom[o * inner + d].
DC_KERNEL_FD(copy_tile_forward, (const int n, const T* bottom, const int inner, const int tiles,
                                 T* top), {
  CUDA_KERNEL_LOOP(index, n) {
    top[index] = bottom[(long long)(index / inner / tiles) * inner + index % inner];
  }
})

// Tile backward, n = bottom count: bottom_diff = the sum of its `tiles` copies' top_diff.
DC_KERNEL_FD(copy_tile_backward, (const int n, const T* top_diff, const int inner, const int tiles,
                                  T* bottom_diff), {
  CUDA_KERNEL_LOOP(index, n) {
    const long long base = (long long)(index / inner) * tiles * inner + index % inner;
    T sum = 0;
    for (int t = 0; t < tiles; ++t) sum += top_diff[base + (long long)t * inner];
    bottom_diff[index] = sum;
  }
})
