package jobs

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// The hot loops of ALS are dot products, axpys and one k×k matrix-vector product per CG step.
// gonum's BLAS has SSE kernels for float32 (internal/asm/f32) behind its Implementation; calling
// it costs a few bounds checks per call, measured cheaper than the Go loops below from 16 factors
// up. The Go versions are kept as the reference the kernels test checks against.
var blasImpl gonum.Implementation

func dot(x, y []float32) float32 { return blasImpl.Sdot(len(x), x, 1, y, 1) }

// axpy: y += a*x.
func axpy(a float32, x, y []float32) { blasImpl.Saxpy(len(x), a, x, 1, y, 1) }

// symv: y = A x for a k×k row-major A.
func matvec(k int, a, x, y []float32) {
	blasImpl.Sgemv(blas.NoTrans, k, k, 1, a, k, x, 1, 0, y, 1)
}

func dotRef(x, y []float32) float32 {
	s := float32(0)
	for i := range x {
		s += x[i] * y[i]
	}
	return s
}

const blasNoTrans = blas.NoTrans
