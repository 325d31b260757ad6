// The umbrella header: everything latentkit offers. Prefer the specific headers in your own code.
#pragma once
#include "latentkit/config/config.hpp"
#include "latentkit/core/dtype.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/half.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/core/tensor_view.hpp"
