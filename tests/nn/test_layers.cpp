// Layers (Linear, LayerNorm, Embedding, Mlp, MultiheadSelfAttention) against float64 references, and the generic
// parameter loading with its error messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "latentkit/core/half.hpp"
#include "latentkit/io/safetensors_writer.hpp"
#include "latentkit/nn/attention.hpp"
#include "latentkit/nn/embedding.hpp"
#include "latentkit/nn/layer_norm.hpp"
#include "latentkit/nn/linear.hpp"
#include "latentkit/nn/mlp.hpp"
#include "latentkit/nn/parameters.hpp"

using namespace latentkit;

namespace {

void fill_random(TensorView<float> t, unsigned seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  t.for_each([&](float& v) { v = dist(gen); });
}

/// float32 error bound of a length-n dot product accumulated in any order: n * u * sum |terms| (u = 2^-24),
/// with a factor 2 for the bias add and the rounding of the inputs.
double dot_bound(index_t n, double abs_sum) { return 2.0 * static_cast<double>(n + 2) * std::ldexp(1.0, -24) * abs_sum; }

std::vector<double> linear_ref(const Tensor<float>& x, const Linear& lin, std::vector<double>* bound = nullptr) {
  const index_t rows = x.size(0), in = lin.in_features(), out = lin.out_features();
  std::vector<double> y(static_cast<std::size_t>(rows * out));
  if (bound) bound->assign(y.size(), 0.0);
  for (index_t r = 0; r < rows; ++r)
    for (index_t o = 0; o < out; ++o) {
      double acc = lin.has_bias() ? lin.bias(o) : 0.0, abs = std::abs(acc);
      for (index_t i = 0; i < in; ++i) {
        acc += static_cast<double>(x(r, i)) * lin.weight(o, i);
        abs += std::abs(static_cast<double>(x(r, i)) * lin.weight(o, i));
      }
      y[static_cast<std::size_t>(r * out + o)] = acc;
      if (bound) (*bound)[static_cast<std::size_t>(r * out + o)] = dot_bound(in, abs);
    }
  return y;
}

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double quick_gelu_ref(double x) { return x / (1.0 + std::exp(-1.702 * x)); }

}  // namespace

TEST_CASE("Linear matches a float64 reference within the float32 dot-product bound, packed or not, with or without bias") {
  for (const bool with_bias : {true, false}) {
    Linear lin(37, 19, with_bias);
    fill_random(lin.weight.view(), 1, 0.2f);
    if (with_bias) fill_random(lin.bias.view(), 2, 0.1f);
    Tensor<float> x({11, 37});
    fill_random(x.view(), 3);
    std::vector<double> bound;
    const auto ref = linear_ref(x, lin, &bound);
    for (const bool packed : {false, true}) {
      if (packed) lin.prepare();
      REQUIRE(lin.prepared() == packed);
      const Tensor<float> y = lin.forward(x.view());
      REQUIRE(y.shape() == Dims{11, 19});
      for (index_t i = 0; i < y.numel(); ++i)
        REQUIRE(std::abs(y.data()[i] - ref[static_cast<std::size_t>(i)]) <= bound[static_cast<std::size_t>(i)]);
    }
  }
}

TEST_CASE("Linear reads strided input rows and writes into strided output rows") {
  Linear lin(8, 5);
  fill_random(lin.weight.view(), 4);
  fill_random(lin.bias.view(), 5);
  lin.prepare();
  Tensor<float> wide({6, 20});
  fill_random(wide.view(), 6);
  const TensorView<const float> x = wide.view().slice(1, 3, 11);  // rows of stride 20
  Tensor<float> out = Tensor<float>::full({6, 12}, -7.0f);
  lin.forward(x, out.view().slice(1, 2, 7));
  const Tensor<float> dense = lin.forward(contiguous(x).view());
  for (index_t r = 0; r < 6; ++r) {
    for (index_t c = 0; c < 5; ++c) REQUIRE(out(r, c + 2) == dense(r, c));
    REQUIRE(out(r, 0) == -7.0f);
    REQUIRE(out(r, 11) == -7.0f);
  }
}

TEST_CASE("Linear rejects inputs of the wrong width with a ShapeError naming both shapes") {
  Linear lin(4, 3);
  Tensor<float> x = Tensor<float>::full({2, 5}, 1.0f);
  REQUIRE_THROWS_AS(lin.forward(x.view()), ShapeError);
  Tensor<float> y({2, 3});
  REQUIRE_THROWS_WITH(lin.forward(x.view(), y.view()), Catch::Contains("[2, 5]") || Catch::Contains("[2,5]"));
}

TEST_CASE("LayerNorm matches a float64 reference") {
  LayerNorm norm(48, 1e-5f);
  fill_random(norm.weight.view(), 7, 0.1f);
  for (index_t i = 0; i < 48; ++i) norm.weight(i) += 1.0f;
  fill_random(norm.bias.view(), 8, 0.05f);
  Tensor<float> x({5, 48});
  fill_random(x.view(), 9, 3.0f);
  const Tensor<float> y = norm.forward(x.view());
  for (index_t r = 0; r < 5; ++r) {
    double mean = 0, var = 0;
    for (index_t c = 0; c < 48; ++c) mean += x(r, c);
    mean /= 48;
    for (index_t c = 0; c < 48; ++c) var += (x(r, c) - mean) * (x(r, c) - mean);
    var /= 48;
    for (index_t c = 0; c < 48; ++c) {
      const double ref = (x(r, c) - mean) / std::sqrt(var + 1e-5) * norm.weight(c) + norm.bias(c);
      REQUIRE(std::abs(y(r, c) - ref) <= 1e-5 * (1.0 + std::abs(ref)));
    }
  }
}

TEST_CASE("Embedding copies the rows of its ids and rejects ids outside the table") {
  Embedding emb(10, 6);
  fill_random(emb.weight.view(), 10);
  const std::vector<std::int64_t> ids{3, 0, 9, 3};
  Tensor<float> out({4, 6});
  emb.forward(TensorView<const std::int64_t>(ids.data(), Dims{4}), out.view());
  for (index_t i = 0; i < 4; ++i)
    for (index_t c = 0; c < 6; ++c) REQUIRE(out(i, c) == emb.weight(ids[static_cast<std::size_t>(i)], c));
  const std::vector<std::int64_t> bad{1, 10};
  REQUIRE_THROWS_WITH(emb.forward(TensorView<const std::int64_t>(bad.data(), Dims{2}), out.view().slice(0, 0, 2)),
                      Catch::Contains("id 10 at position 1"));
  const std::vector<std::int32_t> negative{-1};
  REQUIRE_THROWS_AS(emb.forward(TensorView<const std::int32_t>(negative.data(), Dims{1}), out.view().slice(0, 0, 1)), ShapeError);
}

TEST_CASE("Mlp applies fc1, the activation policy and fc2 like a float64 reference") {
  for (const Activation act : {Activation::quick_gelu, Activation::gelu}) {
    Mlp mlp(16, 40, act);
    fill_random(mlp.fc1.weight.view(), 11, 0.25f);
    fill_random(mlp.fc1.bias.view(), 12, 0.05f);
    fill_random(mlp.fc2.weight.view(), 13, 0.15f);
    fill_random(mlp.fc2.bias.view(), 14, 0.05f);
    mlp.prepare();
    Tensor<float> x({7, 16});
    fill_random(x.view(), 15);
    Tensor<float> y({7, 16});
    mlp.forward(x.view(), y.view());
    const auto h = linear_ref(x, mlp.fc1);
    for (index_t r = 0; r < 7; ++r)
      for (index_t o = 0; o < 16; ++o) {
        double acc = mlp.fc2.bias(o);
        for (index_t k = 0; k < 40; ++k) {
          const double hk = h[static_cast<std::size_t>(r * 40 + k)];
          acc += (act == Activation::gelu ? gelu_ref(hk) : quick_gelu_ref(hk)) * mlp.fc2.weight(o, k);
        }
        REQUIRE(std::abs(y(r, o) - acc) <= 2e-5 * (1.0 + std::abs(acc)));
      }
  }
}

TEST_CASE("Activation names parse like HF hidden_act values, and unknown names are rejected") {
  REQUIRE(parse_activation("quick_gelu") == Activation::quick_gelu);
  REQUIRE(parse_activation("gelu") == Activation::gelu);
  REQUIRE(parse_activation("gelu_new") == Activation::gelu_tanh);
  REQUIRE_THROWS_AS(parse_activation("relu6"), UnknownNameError);
  REQUIRE_THROWS_WITH(parse_activation("relu6"),
                      "unknown activation \"relu6\"; valid names: \"quick_gelu\", \"gelu\", \"gelu_new\", "
                      "\"gelu_pytorch_tanh\"");
}

TEST_CASE("Causal multi-head self-attention matches a float64 reference for both q/k/v layouts") {
  const index_t b = 2, l = 9, w = 24, heads = 3, d = w / heads;
  MultiheadSelfAttention packed(w, heads, QkvLayout::packed);
  fill_random(packed.in_proj.weight.view(), 16, 0.3f);
  fill_random(packed.in_proj.bias.view(), 17, 0.1f);
  fill_random(packed.out_proj.weight.view(), 18, 0.2f);
  fill_random(packed.out_proj.bias.view(), 19, 0.1f);
  packed.prepare();
  Tensor<float> x({b, l, w});
  fill_random(x.view(), 20);
  Tensor<float> y({b, l, w});
  packed.forward(x.view(), y.view(), true);

  const auto qkv = linear_ref(Tensor<float>::copy_of(x.view().reshape({b * l, w})), packed.in_proj);
  std::vector<double> heads_out(static_cast<std::size_t>(b * l * w));
  for (index_t s = 0; s < b; ++s)
    for (index_t h = 0; h < heads; ++h)
      for (index_t i = 0; i < l; ++i) {
        std::vector<double> p(static_cast<std::size_t>(i + 1));
        double mx = -1e300, sum = 0;
        for (index_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (index_t c = 0; c < d; ++c)
            dot += qkv[static_cast<std::size_t>((s * l + i) * 3 * w + h * d + c)] *
                   qkv[static_cast<std::size_t>((s * l + j) * 3 * w + w + h * d + c)];
          p[static_cast<std::size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, p[static_cast<std::size_t>(j)]);
        }
        for (auto& v : p) sum += (v = std::exp(v - mx));
        for (index_t c = 0; c < d; ++c) {
          double acc = 0;
          for (index_t j = 0; j <= i; ++j)
            acc += p[static_cast<std::size_t>(j)] * qkv[static_cast<std::size_t>((s * l + j) * 3 * w + 2 * w + h * d + c)];
          heads_out[static_cast<std::size_t>((s * l + i) * w + h * d + c)] = acc / sum;
        }
      }
  for (index_t r = 0; r < b * l; ++r)
    for (index_t o = 0; o < w; ++o) {
      double acc = packed.out_proj.bias(o);
      for (index_t k = 0; k < w; ++k) acc += heads_out[static_cast<std::size_t>(r * w + k)] * packed.out_proj.weight(o, k);
      REQUIRE(std::abs(y.data()[r * w + o] - acc) <= 2e-5 * (1.0 + std::abs(acc)));
    }

  // The separate layout walks row blocks of the same matrix: copying parameter by parameter gives the same layer.
  MultiheadSelfAttention separate(w, heads, QkvLayout::separate);
  REQUIRE(parameter_names(separate, "a.") ==
          std::vector<std::string>{"a.q_proj.weight", "a.q_proj.bias", "a.k_proj.weight", "a.k_proj.bias",
                                   "a.v_proj.weight", "a.v_proj.bias", "a.out_proj.weight", "a.out_proj.bias"});
  std::vector<Tensor<float>> blocks;
  for (index_t p = 0; p < 3; ++p) {
    blocks.push_back(Tensor<float>::copy_of(packed.in_proj.weight.view().slice(0, p * w, (p + 1) * w)));
    blocks.push_back(Tensor<float>::copy_of(packed.in_proj.bias.view().slice(0, p * w, (p + 1) * w)));
  }
  blocks.push_back(packed.out_proj.weight.clone());
  blocks.push_back(packed.out_proj.bias.clone());
  std::size_t next = 0;
  separate.visit_parameters([&](const std::string&, TensorView<float> target) { copy(blocks[next++].view(), target); });
  separate.prepare();
  Tensor<float> y2({b, l, w});
  separate.forward(x.view(), y2.view(), true);
  for (index_t i = 0; i < y.numel(); ++i) REQUIRE(y2.data()[i] == y.data()[i]);
}

TEST_CASE("load_parameters widens F16 and BF16 weights and names the key, file and shapes of bad tensors") {
  Linear source(4, 3);
  fill_random(source.weight.view(), 21);
  fill_random(source.bias.view(), 22);
  Tensor<f16> w16(Dims{3, 4});
  Tensor<bf16> b16(Dims{3});
  for (index_t i = 0; i < 12; ++i) w16.data()[i] = f16(source.weight.data()[i]);
  for (index_t i = 0; i < 3; ++i) b16.data()[i] = bf16(source.bias.data()[i]);

  SafetensorsWriter good;
  good.add("layer.weight", w16);
  good.add("layer.bias", b16);
  const auto image = good.to_bytes();
  const SafetensorsFile file(std::span<const std::byte>(image), "good.safetensors");
  Linear lin(4, 3);
  load_parameters(lin, file, "layer.");
  REQUIRE(lin.prepared());
  for (index_t i = 0; i < 12; ++i) REQUIRE(lin.weight.data()[i] == static_cast<float>(w16.data()[i]));
  for (index_t i = 0; i < 3; ++i) REQUIRE(lin.bias.data()[i] == static_cast<float>(b16.data()[i]));

  SafetensorsWriter missing;
  missing.add("layer.weight", source.weight);
  const auto missing_image = missing.to_bytes();
  REQUIRE_THROWS_WITH(load_parameters(lin, SafetensorsFile(std::span<const std::byte>(missing_image), "m.safetensors"), "layer."),
                      Catch::Contains("m.safetensors") && Catch::Contains("missing tensor 'layer.bias'") &&
                          Catch::Contains("[3]"));

  SafetensorsWriter shaped;
  shaped.add("layer.weight", Tensor<float>::full({4, 3}, 0.5f));
  shaped.add("layer.bias", source.bias);
  const auto shaped_image = shaped.to_bytes();
  REQUIRE_THROWS_WITH(load_parameters(lin, SafetensorsFile(std::span<const std::byte>(shaped_image), "s.safetensors"), "layer."),
                      Catch::Contains("s.safetensors") && Catch::Contains("'layer.weight'") &&
                          Catch::Contains("shape [4, 3]; expected [3, 4]"));

  SafetensorsWriter typed;
  typed.add("layer.weight", source.weight);
  typed.add("layer.bias", Tensor<std::int64_t>::full({3}, 1));
  const auto typed_image = typed.to_bytes();
  REQUIRE_THROWS_AS(load_parameters(lin, SafetensorsFile(std::span<const std::byte>(typed_image), "t.safetensors"), "layer."),
                    FormatError);
}
