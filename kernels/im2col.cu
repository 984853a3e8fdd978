// im2col / col2im for 2-D convolution with stride, pad and dilation: Caffe's index formulas
// (src/caffe/util/im2col.cu), over `num` images at once.
//
// Images are (num, channels, height, width). Column entry (image b, row r, output position p),
// r = (c * kernel_h + i) * kernel_w + j and p = h_col * width_col + w_col, with
// height_col = (height + 2 pad_h - (dilation_h (kernel_h - 1) + 1)) / stride_h + 1 (the layer
// computes it), lives at  b * image_stride + r * row_stride + p * pos_stride,  so one launch
// fills any of the layouts a batched GEMM wants:
//   Caffe's, per image (rows, P) one after another: image_stride = rows * P, row_stride = P, pos_stride = 1
//   (rows, num * P), columns (image, position):     image_stride = P, row_stride = num * P, pos_stride = 1
//   (rows, P * num), columns (position, image):     image_stride = 1, row_stride = P * num, pos_stride = num
// (P = height_col * width_col; num = 1 with the first is Caffe's own call.)

#include "common.cuh"

// n = num * channels * height_col * width_col: one thread per (image, channel, output pixel)
// writes the kernel_h * kernel_w column entries of that pixel (0 where they fall in the pad).
DC_KERNEL_FD(im2col_im2col, (const int n, const T* data_im, const int channels, const int height,
                             const int width, const int kernel_h, const int kernel_w,
                             const int pad_h, const int pad_w, const int stride_h,
                             const int stride_w, const int dilation_h, const int dilation_w,
                             const int height_col, const int width_col, const int image_stride,
                             const int row_stride, const int pos_stride, T* data_col), {
  CUDA_KERNEL_LOOP(index, n) {
    const int h_index = index / width_col;
    const int h_col = h_index % height_col;
    const int w_col = index % width_col;
    const int c_all = h_index / height_col;  // image * channels + channel
    const int c_im = c_all % channels;
    const int image = c_all / channels;
    const int h_offset = h_col * stride_h - pad_h;
    const int w_offset = w_col * stride_w - pad_w;
    T* col = data_col + (long long)image * image_stride
             + (long long)c_im * kernel_h * kernel_w * row_stride
             + (long long)(h_col * width_col + w_col) * pos_stride;
    const T* im = data_im + (long long)c_all * height * width;
    for (int i = 0; i < kernel_h; ++i) {
      for (int j = 0; j < kernel_w; ++j) {
        const int h_im = h_offset + i * dilation_h;
        const int w_im = w_offset + j * dilation_w;
        *col = (h_im >= 0 && w_im >= 0 && h_im < height && w_im < width)
                   ? im[h_im * width + w_im] : T(0);
        col += row_stride;
      }
    }
  }
})

// n = num * channels * height * width: one thread per image pixel sums every column entry
// that im2col copied from it (writes data_im; the adjoint of im2col).
DC_KERNEL_FD(im2col_col2im, (const int n, const T* data_col, const int channels, const int height,
                             const int width, const int kernel_h, const int kernel_w,
                             const int pad_h, const int pad_w, const int stride_h,
                             const int stride_w, const int dilation_h, const int dilation_w,
                             const int height_col, const int width_col, const int image_stride,
                             const int row_stride, const int pos_stride, T* data_im), {
  CUDA_KERNEL_LOOP(index, n) {
    T val = 0;
    const int w_im = index % width + pad_w;
    const int h_im = (index / width) % height + pad_h;
    const int c_all = index / (width * height);
    const int c_im = c_all % channels;
    const int image = c_all / channels;
    const int kernel_extent_w = (kernel_w - 1) * dilation_w + 1;
    const int kernel_extent_h = (kernel_h - 1) * dilation_h + 1;
    // the output pixels whose window covers this one
    const int w_col_start = (w_im < kernel_extent_w) ? 0 : (w_im - kernel_extent_w) / stride_w + 1;
    const int w_col_end = min(w_im / stride_w + 1, width_col);
    const int h_col_start = (h_im < kernel_extent_h) ? 0 : (h_im - kernel_extent_h) / stride_h + 1;
    const int h_col_end = min(h_im / stride_h + 1, height_col);
    const T* col = data_col + (long long)image * image_stride;
    for (int h_col = h_col_start; h_col < h_col_end; ++h_col) {
      for (int w_col = w_col_start; w_col < w_col_end; ++w_col) {
        int h_k = h_im - h_col * stride_h;
        int w_k = w_im - w_col * stride_w;
        if (h_k % dilation_h == 0 && w_k % dilation_w == 0) {
          h_k /= dilation_h;
          w_k /= dilation_w;
          val += col[(long long)((c_im * kernel_h + h_k) * kernel_w + w_k) * row_stride
                     + (long long)(h_col * width_col + w_col) * pos_stride];
        }
      }
    }
    data_im[index] = val;
  }
})
