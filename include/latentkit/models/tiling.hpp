// Tiled evaluation with blended overlaps: a network that maps an image of H x W to one of H*s x W*s (the VAE
// decoder: s = 8; the encoder: s = 1/8) runs on overlapping tiles, and the outputs are averaged with weights that
// ramp linearly across each overlap, so neighbouring tiles fade into each other instead of meeting at a seam.
// Memory then grows with the tile, not the image; the blend is exact where one tile covers the input.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"

LATENTKIT_NAMESPACE_BEGIN

/// Tile size and overlap in input pixels (both multiples of the network's input step).
struct TileOptions {
  index_t tile = 64;
  index_t overlap = 16;
};

/// The output/input size ratio num/den (8/1 for a decoder, 1/8 for an encoder).
struct ScaleRatio {
  index_t num = 1, den = 1;
  index_t apply(index_t n) const { return n * num / den; }
};

namespace detail {

struct TileSpan {
  index_t begin, size;
};

/// Tile starts along one axis: every tile has `tile` pixels (or the whole extent when smaller), consecutive tiles
/// overlap by at least `overlap`, the last ends at the edge; starts are multiples of `step`.
inline std::vector<TileSpan> tile_spans(index_t extent, index_t tile, index_t overlap, index_t step) {
  if (extent <= tile) return {{0, extent}};
  std::vector<TileSpan> spans;
  const index_t stride = tile - overlap;
  for (index_t begin = 0;; begin += stride) {
    if (begin + tile >= extent) {
      spans.push_back({(extent - tile) / step * step, tile});
      break;
    }
    spans.push_back({begin, tile});
  }
  return spans;
}

/// Blend weights along one axis of tile i (in output pixels): a linear ramp over the overlap with each neighbour.
inline std::vector<float> tile_ramp(const std::vector<TileSpan>& spans, std::size_t i, ScaleRatio scale) {
  const index_t begin = scale.apply(spans[i].begin), size = scale.apply(spans[i].size);
  std::vector<float> w(static_cast<std::size_t>(size), 1.0f);
  if (i > 0) {
    const index_t overlap = scale.apply(spans[i - 1].begin + spans[i - 1].size) - begin;
    for (index_t q = 0; q < std::min(overlap, size); ++q)
      w[q] *= static_cast<float>((static_cast<double>(q) + 0.5) / static_cast<double>(overlap));
  }
  if (i + 1 < spans.size()) {
    const index_t overlap = begin + size - scale.apply(spans[i + 1].begin);
    for (index_t q = std::max<index_t>(0, size - overlap); q < size; ++q)
      w[q] *= static_cast<float>((static_cast<double>(size - q) - 0.5) / static_cast<double>(overlap));
  }
  return w;
}

}  // namespace detail

/// Runs `net(tile) -> Tensor<float>` on overlapping tiles of x [B, C, H, W] and blends the outputs into
/// [B, out_channels, H*s, W*s]. `step` is the input granularity (8 for an encoder's input, 1 for a decoder's).
template <class Net>
Tensor<float> run_tiled(TensorView<const float> x, index_t out_channels, ScaleRatio scale, index_t step,
                        const TileOptions& options, Net&& net) {
  if (x.rank() != 4) throw ShapeError("run_tiled: input " + x.shape().str() + " is not [batch, channels, height, width]");
  if (options.tile < 1 || options.overlap < 0 || options.overlap >= options.tile || options.tile % step != 0 ||
      options.overlap % step != 0 || scale.apply(options.tile) * scale.den != options.tile * scale.num)
    throw Error("run_tiled: tile " + std::to_string(options.tile) + " with overlap " + std::to_string(options.overlap) +
                " is not a valid tiling (overlap < tile, both multiples of " + std::to_string(step) + ")");
  const index_t batch = x.size(0), height = x.size(2), width = x.size(3);
  if (height % step != 0 || width % step != 0)
    throw ShapeError("run_tiled: input " + x.shape().str() + " is not a multiple of " + std::to_string(step));
  const auto rows = detail::tile_spans(height, options.tile, options.overlap, step);
  const auto cols = detail::tile_spans(width, options.tile, options.overlap, step);
  const index_t out_h = scale.apply(height), out_w = scale.apply(width);
  if (rows.size() == 1 && cols.size() == 1) return net(x);

  Tensor<float> out = Tensor<float>::zeros({batch, out_channels, out_h, out_w});
  Tensor<float> weight_sum = Tensor<float>::zeros({out_h, out_w});
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto wr = detail::tile_ramp(rows, r, scale);
    for (std::size_t c = 0; c < cols.size(); ++c) {
      const auto wc = detail::tile_ramp(cols, c, scale);
      const Tensor<float> tile_in =
          contiguous(x.slice(2, rows[r].begin, rows[r].begin + rows[r].size).slice(3, cols[c].begin, cols[c].begin + cols[c].size));
      const Tensor<float> tile_out = net(tile_in.view());
      const index_t y0 = scale.apply(rows[r].begin), x0 = scale.apply(cols[c].begin);
      const index_t th = static_cast<index_t>(wr.size()), tw = static_cast<index_t>(wc.size());
      if (tile_out.rank() != 4 || tile_out.size(0) != batch || tile_out.size(1) != out_channels || tile_out.size(2) != th ||
          tile_out.size(3) != tw)
        throw ShapeError("run_tiled: a tile's output " + tile_out.shape().str() + " is not [" + std::to_string(batch) + ", " +
                         std::to_string(out_channels) + ", " + std::to_string(th) + ", " + std::to_string(tw) + "]");
      for (index_t b = 0; b < batch; ++b)
        for (index_t ch = 0; ch < out_channels; ++ch)
          for (index_t i = 0; i < th; ++i) {
            const float* src = &tile_out.data()[((b * out_channels + ch) * th + i) * tw];
            float* dst = &out.data()[((b * out_channels + ch) * out_h + y0 + i) * out_w + x0];
            for (index_t j = 0; j < tw; ++j) dst[j] += wr[i] * wc[j] * src[j];
          }
      for (index_t i = 0; i < th; ++i)
        for (index_t j = 0; j < tw; ++j) weight_sum.data()[(y0 + i) * out_w + x0 + j] += wr[i] * wc[j];
    }
  }
  for (index_t p = 0; p < batch * out_channels; ++p)
    for (index_t q = 0; q < out_h * out_w; ++q) out.data()[p * out_h * out_w + q] /= weight_sum.data()[q];
  return out;
}

LATENTKIT_NAMESPACE_END
