// The umbrella header: the whole library. Prefer the specific headers in your own code (faster to compile).
// Not included here: experiments/ (the scheduler comparison program's code) and kernels/reference/ (test oracles).
#pragma once
#include "latentkit/config/config.hpp"

// tensors
#include "latentkit/core/convert.hpp"
#include "latentkit/core/dtype.hpp"
#include "latentkit/core/elementwise.hpp"
#include "latentkit/core/error.hpp"
#include "latentkit/core/half.hpp"
#include "latentkit/core/interop.hpp"
#include "latentkit/core/reduce.hpp"
#include "latentkit/core/shape.hpp"
#include "latentkit/core/tensor.hpp"
#include "latentkit/core/tensor_view.hpp"
#include "latentkit/backend/kernel_library/selection.hpp"
#include "latentkit/backend/simd/arch.hpp"
#include "latentkit/backend/simd/cpu_features.hpp"

// kernels
#include "latentkit/kernels/activation.hpp"
#include "latentkit/kernels/attention.hpp"
#include "latentkit/kernels/conv2d.hpp"
#include "latentkit/kernels/gemm.hpp"
#include "latentkit/kernels/norm.hpp"
#include "latentkit/kernels/resample.hpp"

// files
#include "latentkit/io/safetensors.hpp"
#include "latentkit/io/safetensors_writer.hpp"

// text
#include "latentkit/text/emphasis.hpp"
#include "latentkit/text/prompt.hpp"
#include "latentkit/text/prompt_chunks.hpp"
#include "latentkit/tokenizers/clip_tokenizer.hpp"

// layers, models, pipelines
#include "latentkit/models/checkpoint.hpp"
#include "latentkit/models/clip_text.hpp"
#include "latentkit/nn/attention.hpp"
#include "latentkit/nn/embedding.hpp"
#include "latentkit/nn/layer_norm.hpp"
#include "latentkit/nn/linear.hpp"
#include "latentkit/nn/mlp.hpp"
#include "latentkit/nn/parameters.hpp"
#include "latentkit/pipelines/conditioning.hpp"

// diffusion: schedules, denoisers, samplers
#include "latentkit/samplers/samplers.hpp"
#include "latentkit/schedules/all.hpp"
