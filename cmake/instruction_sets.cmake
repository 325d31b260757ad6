# Which instruction sets latentkit's kernels run, decided at configure time and said in its output.
#
# LATENTKIT_NATIVE (default ON): the headers are compiled for the build machine (-march=native), as ggml's
#   GGML_NATIVE does: every kernel inlined for the best instruction set this CPU has.
# LATENTKIT_NATIVE=OFF: a portable build (the compiler's baseline, SSE2 on x86-64). Its kernels still reach
#   AVX2/AVX-512 speed through the kernel library below.
# LATENTKIT_KERNEL_LIBRARY (default ON, x86-64 with GCC or Clang): latentkit::kernels, a static library with the
#   kernels compiled once per x86-64 level (src/kernel_library/kernel_table.cpp with -march=x86-64-v3 and
#   -march=x86-64-v4; bf16_dot_table.cpp with -march=x86-64-v4 -mavx512bf16); latentkit::latentkit links it, and a kernel call runs the best level the CPU supports when
#   that beats what the caller was compiled for (backend/kernel_library/selection.hpp).
include(CheckCXXCompilerFlag)

set(LATENTKIT_KERNEL_TARGETS "")
set(_latentkit_x86_64 FALSE)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  set(_latentkit_x86_64 TRUE)
endif()

# What the header code is compiled for.
if(LATENTKIT_NATIVE AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(latentkit INTERFACE $<BUILD_INTERFACE:-march=native>)  # the install adds it in latentkitConfig
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -march=native -dM -E -x c++ /dev/null
                  OUTPUT_VARIABLE _latentkit_macros ERROR_QUIET)
  set(_latentkit_isas "")
  foreach(isa SSE2 AVX AVX2 FMA F16C AVX512F AVX512BW AVX512DQ AVX512VL AVX512BF16 ARM_NEON)
    if(_latentkit_macros MATCHES "#define __${isa}__ 1")
      list(APPEND _latentkit_isas ${isa})
    endif()
  endforeach()
  list(JOIN _latentkit_isas " " _latentkit_isas)
  message(STATUS "latentkit: headers compiled for this machine (-march=native): ${_latentkit_isas}")
else()
  message(STATUS "latentkit: portable build (LATENTKIT_NATIVE=OFF): headers compiled for the compiler's baseline "
                 "instruction set")
endif()

# The kernel library, one object library per x86-64 level.
if(LATENTKIT_KERNEL_LIBRARY AND _latentkit_x86_64)
  check_cxx_compiler_flag("-march=x86-64-v4 -mavx512bf16" _latentkit_has_levels)
  if(NOT _latentkit_has_levels)
    message(WARNING "latentkit: ${CMAKE_CXX_COMPILER} does not know -march=x86-64-v4 -mavx512bf16; no kernel library built")
  else()
    add_library(latentkit_kernels STATIC)
    foreach(level x86_64_v3 x86_64_v4)
      string(REPLACE "_" "-" march ${level})
      add_library(latentkit_kernels_${level} OBJECT ${PROJECT_SOURCE_DIR}/src/kernel_library/kernel_table.cpp)
      target_compile_options(latentkit_kernels_${level} PRIVATE -march=${march})
      target_compile_definitions(latentkit_kernels_${level} PRIVATE LATENTKIT_ABI_ISA=${level} LATENTKIT_LEVEL=${level})
    endforeach()
    # The vdpbf16ps GEMM for CPUs with AVX512-BF16 (Zen 4+, Sapphire Rapids): its own translation unit, so the
    # x86-64-v4 level above still runs on AVX-512 CPUs without it.
    add_library(latentkit_kernels_x86_64_v4_bf16 OBJECT ${PROJECT_SOURCE_DIR}/src/kernel_library/bf16_dot_table.cpp)
    target_compile_options(latentkit_kernels_x86_64_v4_bf16 PRIVATE -march=x86-64-v4 -mavx512bf16)
    target_compile_definitions(latentkit_kernels_x86_64_v4_bf16 PRIVATE LATENTKIT_ABI_ISA=x86_64_v4_bf16)
    # What every copy needs: the headers, their dependencies and OpenMP.
    foreach(level x86_64_v3 x86_64_v4 x86_64_v4_bf16)
      target_compile_features(latentkit_kernels_${level} PRIVATE cxx_std_20)
      target_include_directories(latentkit_kernels_${level} PRIVATE ${PROJECT_SOURCE_DIR}/include)
      target_link_libraries(latentkit_kernels_${level} PRIVATE xsimd xtensor Eigen3::Eigen nlohmann_json::nlohmann_json)
      set_target_properties(latentkit_kernels_${level} PROPERTIES POSITION_INDEPENDENT_CODE ON)
      if(LATENTKIT_WITH_OPENMP)
        target_link_libraries(latentkit_kernels_${level} PRIVATE OpenMP::OpenMP_CXX)
        target_compile_definitions(latentkit_kernels_${level} PRIVATE LATENTKIT_USE_OPENMP=1)
      endif()
      target_sources(latentkit_kernels PRIVATE $<TARGET_OBJECTS:latentkit_kernels_${level}>)
    endforeach()
    if(LATENTKIT_WITH_OPENMP)
      target_link_libraries(latentkit_kernels PUBLIC OpenMP::OpenMP_CXX)
    endif()
    target_compile_definitions(latentkit_kernels INTERFACE LATENTKIT_USE_KERNEL_LIBRARY=1)
    set_target_properties(latentkit_kernels PROPERTIES EXPORT_NAME kernels LINKER_LANGUAGE CXX)
    add_library(latentkit::kernels ALIAS latentkit_kernels)
    target_link_libraries(latentkit INTERFACE latentkit_kernels)
    set(LATENTKIT_KERNEL_TARGETS latentkit_kernels)
    message(STATUS "latentkit: kernel library latentkit::kernels with levels x86-64-v3 (AVX2+FMA) and x86-64-v4 "
                   "(AVX-512), and the AVX512-BF16 vdpbf16ps GEMM, chosen at run time from CPUID")
  endif()
elseif(LATENTKIT_KERNEL_LIBRARY)
  message(STATUS "latentkit: no kernel library on ${CMAKE_SYSTEM_PROCESSOR} (x86-64 only); kernels run what the "
                 "headers are compiled for")
endif()
