// Embedding table lookup (torch nn.Embedding: weight [num_embeddings, dim]).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/tensor.hpp"

LATENTKIT_NAMESPACE_BEGIN

class Embedding {
 public:
  Embedding() = default;
  Embedding(index_t num_embeddings, index_t dim) : weight(Tensor<float>::zeros({num_embeddings, dim})) {}

  Tensor<float> weight;  ///< [num_embeddings, dim]

  index_t num_embeddings() const { return weight.size(0); }
  index_t dim() const { return weight.size(1); }

  template <class Visit>
  void visit_parameters(Visit&& visit, const std::string& prefix = "") {
    visit(prefix + "weight", weight.view());
  }

  /// out[i, :] = weight[ids[i], :] for ids of any shape [n] (out [n, dim], rows may be strided). An id outside
  /// [0, num_embeddings) throws ShapeError naming the position and the id.
  template <class Id>
    requires std::is_integral_v<Id>
  void forward(TensorView<const Id> ids, TensorView<float> out) const {
    if (ids.rank() != 1 || out.rank() != 2 || out.size(0) != ids.size(0) || out.size(1) != dim() || (out.stride(1) != 1 && dim() > 1))
      throw ShapeError("Embedding: ids " + ids.shape().str() + ", out " + out.shape().str() + "; expected [n] -> [n, " +
                       std::to_string(dim()) + "] with contiguous rows");
    for (index_t i = 0; i < ids.size(0); ++i) {
      const auto id = static_cast<std::int64_t>(ids(i));
      if (id < 0 || id >= num_embeddings())
        throw ShapeError("Embedding: id " + std::to_string(id) + " at position " + std::to_string(i) +
                         " is outside the table of " + std::to_string(num_embeddings()) + " rows");
      std::memcpy(out.data() + i * out.stride(0), weight.data() + id * dim(), static_cast<std::size_t>(dim()) * sizeof(float));
    }
  }
};

LATENTKIT_NAMESPACE_END
