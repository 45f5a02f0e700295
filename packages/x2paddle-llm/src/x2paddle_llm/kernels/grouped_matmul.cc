// Grouped matrix product for mixture-of-experts layers (CPU, float32).
//
//   out[b[e]:b[e+1]] = x[b[e]:b[e+1]] @ w[e]      for every expert e
//
// x [N, K] holds the routed rows sorted by expert, b [E + 1] the first row of each expert
// (and N at the end), w [E, K, M] the experts' stacked weights. Each expert is one BLAS call
// on its own slice of x and of w: no copy of the weights, no operator per expert, nothing
// at all for an expert no row chose. Rows outside [b[0], b[E]) are zero in out.
//
// The BLAS is the one Paddle itself loads (its own library folder, named at build time by
// X2PL_BLAS), so the thread settings of Paddle and of the predictor apply here too.
#include <dlfcn.h>

#include <cstring>
#include <string>

#include "paddle/extension.h"

namespace {

enum { kRowMajor = 101, kNoTrans = 111, kTrans = 112 };
typedef void (*Sgemm)(int, int, int, int, int, int, float, const float*, int, const float*,
                      int, float, float*, int);

Sgemm ResolveSgemm() {
  void* lib = dlopen(X2PL_BLAS, RTLD_NOW | RTLD_LOCAL);
  PD_CHECK(lib != nullptr, "x2pl_grouped_matmul: cannot load ", X2PL_BLAS, ": ", dlerror());
  void* fn = dlsym(lib, "cblas_sgemm");
  PD_CHECK(fn != nullptr, "x2pl_grouped_matmul: no cblas_sgemm in ", X2PL_BLAS);
  return reinterpret_cast<Sgemm>(fn);
}

Sgemm GetSgemm() {
  static Sgemm fn = ResolveSgemm();
  return fn;
}

// The bounds as host values, checked: E + 1 non-decreasing offsets within [0, rows].
const int64_t* CheckedBounds(const paddle::Tensor& bounds, int64_t experts, int64_t rows) {
  PD_CHECK(bounds.is_cpu(), "x2pl_grouped_matmul: bounds must be on the CPU");
  PD_CHECK(bounds.dtype() == paddle::DataType::INT64, "x2pl_grouped_matmul: bounds must be int64");
  PD_CHECK(bounds.numel() == experts + 1, "x2pl_grouped_matmul: bounds has ", bounds.numel(),
           " values for ", experts, " experts (needs experts + 1)");
  const int64_t* b = bounds.data<int64_t>();
  for (int64_t e = 0; e < experts; ++e) {
    PD_CHECK(b[e] >= 0 && b[e] <= b[e + 1] && b[e + 1] <= rows,
             "x2pl_grouped_matmul: bounds must be non-decreasing within [0, ", rows, "]");
  }
  return b;
}

void CheckFloat(const paddle::Tensor& t, const char* name) {
  PD_CHECK(t.is_cpu(), "x2pl_grouped_matmul: ", name, " must be on the CPU");
  PD_CHECK(t.dtype() == paddle::DataType::FLOAT32, "x2pl_grouped_matmul: ", name,
           " must be float32");
}

void Zero(paddle::Tensor* t) {
  if (t->numel() > 0) std::memset(t->data<float>(), 0, sizeof(float) * t->numel());
}

}  // namespace

std::vector<paddle::Tensor> GroupedMatmul(const paddle::Tensor& x, const paddle::Tensor& bounds,
                                          const paddle::Tensor& w) {
  CheckFloat(x, "x");
  CheckFloat(w, "w");
  PD_CHECK(x.shape().size() == 2 && w.shape().size() == 3,
           "x2pl_grouped_matmul: x must be [N, K] and w [E, K, M]");
  const int64_t n = x.shape()[0], k = x.shape()[1];
  const int64_t experts = w.shape()[0], m = w.shape()[2];
  PD_CHECK(w.shape()[1] == k, "x2pl_grouped_matmul: x has ", k, " columns, w[e] ",
           w.shape()[1], " rows");
  const int64_t* b = CheckedBounds(bounds, experts, n);
  auto out = paddle::empty({n, m}, paddle::DataType::FLOAT32, x.place());
  float* o = out.data<float>();
  if (b[0] > 0) std::memset(o, 0, sizeof(float) * b[0] * m);
  if (b[experts] < n) std::memset(o + b[experts] * m, 0, sizeof(float) * (n - b[experts]) * m);
  const float* xs = x.data<float>();
  const float* ws = w.data<float>();
  Sgemm sgemm = GetSgemm();
  for (int64_t e = 0; e < experts; ++e) {
    const int64_t rows = b[e + 1] - b[e];
    if (rows == 0) continue;
    sgemm(kRowMajor, kNoTrans, kNoTrans, rows, m, k, 1.0f, xs + b[e] * k, k, ws + e * k * m, m,
          0.0f, o + b[e] * m, m);
  }
  return {out};
}

// d x[rows of e] = d out[rows of e] @ w[e]^T;  d w[e] = x[rows of e]^T @ d out[rows of e]
std::vector<paddle::Tensor> GroupedMatmulGrad(const paddle::Tensor& x,
                                              const paddle::Tensor& bounds,
                                              const paddle::Tensor& w,
                                              const paddle::Tensor& dout) {
  CheckFloat(dout, "the output gradient");
  const int64_t n = x.shape()[0], k = x.shape()[1];
  const int64_t experts = w.shape()[0], m = w.shape()[2];
  const int64_t* b = CheckedBounds(bounds, experts, n);
  auto dx = paddle::empty({n, k}, paddle::DataType::FLOAT32, x.place());
  auto dw = paddle::empty({experts, k, m}, paddle::DataType::FLOAT32, w.place());
  Zero(&dx);
  const float* xs = x.data<float>();
  const float* ws = w.data<float>();
  const float* g = dout.data<float>();
  float* gx = dx.data<float>();
  float* gw = dw.data<float>();
  Sgemm sgemm = GetSgemm();
  for (int64_t e = 0; e < experts; ++e) {
    const int64_t rows = b[e + 1] - b[e];
    if (rows == 0) {
      std::memset(gw + e * k * m, 0, sizeof(float) * k * m);
      continue;
    }
    sgemm(kRowMajor, kNoTrans, kTrans, rows, k, m, 1.0f, g + b[e] * m, m, ws + e * k * m, m,
          0.0f, gx + b[e] * k, k);
    sgemm(kRowMajor, kTrans, kNoTrans, k, m, rows, 1.0f, xs + b[e] * k, k, g + b[e] * m, m,
          0.0f, gw + e * k * m, m);
  }
  return {dx, dw};
}

std::vector<std::vector<int64_t>> GroupedMatmulShape(const std::vector<int64_t>& x,
                                                     const std::vector<int64_t>& bounds,
                                                     const std::vector<int64_t>& w) {
  return {{x[0], w[2]}};
}

std::vector<paddle::DataType> GroupedMatmulDtype(const paddle::DataType& x,
                                                 const paddle::DataType& bounds,
                                                 const paddle::DataType& w) {
  return {x};
}

PD_BUILD_OP(x2pl_grouped_matmul)
    .Inputs({"X", "Bounds", "W"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(GroupedMatmul))
    .SetInferShapeFn(PD_INFER_SHAPE(GroupedMatmulShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(GroupedMatmulDtype));

PD_BUILD_GRAD_OP(x2pl_grouped_matmul)
    .Inputs({"X", "Bounds", "W", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("W")})
    .SetKernelFn(PD_KERNEL(GroupedMatmulGrad));
