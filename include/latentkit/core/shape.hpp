// Dims: a small fixed-capacity list of extents or strides (rank <= max_rank), no heap.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <span>
#include <string>

#include "latentkit/config/config.hpp"
#include "latentkit/core/error.hpp"

LATENTKIT_NAMESPACE_BEGIN

inline constexpr int max_rank = 6;
using index_t = std::int64_t;

/// Extents (a shape) or element strides of a tensor, rank at most max_rank.
class Dims {
 public:
  constexpr Dims() noexcept = default;
  constexpr Dims(std::initializer_list<index_t> values) { assign(values.begin(), values.size()); }
  explicit constexpr Dims(std::span<const index_t> values) { assign(values.data(), values.size()); }
  /// `rank` copies of `value`.
  static constexpr Dims filled(int rank, index_t value) {
    Dims d;
    d.check_rank(static_cast<std::size_t>(rank));
    d.rank_ = rank;
    for (int i = 0; i < rank; ++i) d.v_[static_cast<std::size_t>(i)] = value;
    return d;
  }

  constexpr int rank() const noexcept { return rank_; }
  constexpr bool empty() const noexcept { return rank_ == 0; }
  constexpr index_t operator[](int i) const noexcept { return v_[static_cast<std::size_t>(i)]; }
  constexpr index_t& operator[](int i) noexcept { return v_[static_cast<std::size_t>(i)]; }
  /// Python-style index: -1 is the last axis.
  constexpr index_t at(int i) const {
    const int j = i < 0 ? i + rank_ : i;
    if (j < 0 || j >= rank_) throw ShapeError("axis " + std::to_string(i) + " out of range for rank " + std::to_string(rank_));
    return v_[static_cast<std::size_t>(j)];
  }
  constexpr const index_t* begin() const noexcept { return v_.data(); }
  constexpr const index_t* end() const noexcept { return v_.data() + rank_; }
  constexpr index_t* begin() noexcept { return v_.data(); }
  constexpr index_t* end() noexcept { return v_.data() + rank_; }
  constexpr std::span<const index_t> span() const noexcept { return {v_.data(), static_cast<std::size_t>(rank_)}; }

  constexpr void push_back(index_t value) {
    check_rank(static_cast<std::size_t>(rank_) + 1);
    v_[static_cast<std::size_t>(rank_++)] = value;
  }
  constexpr void erase(int axis) {
    for (int i = axis; i + 1 < rank_; ++i) v_[static_cast<std::size_t>(i)] = v_[static_cast<std::size_t>(i + 1)];
    --rank_;
  }
  constexpr void insert(int axis, index_t value) {
    check_rank(static_cast<std::size_t>(rank_) + 1);
    for (int i = rank_; i > axis; --i) v_[static_cast<std::size_t>(i)] = v_[static_cast<std::size_t>(i - 1)];
    v_[static_cast<std::size_t>(axis)] = value;
    ++rank_;
  }

  /// Product of the extents, or ShapeError when an extent is negative or the product overflows index_t.
  /// Use this on shapes that come from outside (files, user input) before allocating.
  constexpr index_t checked_numel() const {
    index_t n = 1;
    for (int i = 0; i < rank_; ++i) {
      const index_t d = v_[static_cast<std::size_t>(i)];
      if (d < 0) throw ShapeError("negative extent in shape " + str());
      if (d != 0 && n > std::numeric_limits<index_t>::max() / d)
        throw ShapeError("shape " + str() + " has more elements than index_t can count");
      n *= d;
    }
    return n;
  }

  /// Product of the extents (1 for rank 0); the shape must be valid (see checked_numel).
  constexpr index_t numel() const noexcept {
    index_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= v_[static_cast<std::size_t>(i)];
    return n;
  }

  friend constexpr bool operator==(const Dims& a, const Dims& b) noexcept {
    return a.rank_ == b.rank_ && std::equal(a.begin(), a.end(), b.begin());
  }

  /// "[2, 4, 64, 64]"
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(v_[static_cast<std::size_t>(i)]);
    return s + "]";
  }

 private:
  constexpr void check_rank(std::size_t n) const {
    if (n > static_cast<std::size_t>(max_rank))
      throw ShapeError("rank " + std::to_string(n) + " exceeds latentkit's maximum rank " + std::to_string(max_rank));
  }
  constexpr void assign(const index_t* p, std::size_t n) {
    check_rank(n);
    rank_ = static_cast<int>(n);
    for (std::size_t i = 0; i < n; ++i) v_[i] = p[i];
  }
  std::array<index_t, max_rank> v_{};
  int rank_ = 0;
};

/// Row-major (C order) strides, in elements, for a shape.
constexpr Dims contiguous_strides(const Dims& shape) {
  Dims s = Dims::filled(shape.rank(), 1);
  for (int i = shape.rank() - 2; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/// The shape two shapes broadcast to (NumPy rules), or ShapeError.
inline Dims broadcast_shapes(const Dims& a, const Dims& b) {
  const int rank = std::max(a.rank(), b.rank());
  Dims out = Dims::filled(rank, 1);
  for (int i = 0; i < rank; ++i) {
    const index_t x = i < rank - a.rank() ? 1 : a[i - (rank - a.rank())];
    const index_t y = i < rank - b.rank() ? 1 : b[i - (rank - b.rank())];
    if (x != y && x != 1 && y != 1)
      throw ShapeError("shapes " + a.str() + " and " + b.str() + " do not broadcast");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

LATENTKIT_NAMESPACE_END
