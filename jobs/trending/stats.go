package trending

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// MaxScore caps a score: a tail probability below 1e-300 is as surprising as we can say.
const MaxScore = 300

// nbTailScore is -log10 P(X >= x) for X negative binomial with mean mu and size r (variance
// mu + mu²/r), extended to real x through the regularised incomplete beta function:
// P(X >= x) = I_{1-p}(x, r) with p = r/(r+mu). It is 0 when x <= mu or x <= 0, never NaN, and
// at most MaxScore.
func nbTailScore(x, mu, r float64) float64 {
	if !(x > mu) || !(x > 0) || !(mu > 0) || !(r > 0) {
		return 0
	}
	p := r / (r + mu)
	tail := mathext.RegIncBeta(x, r, 1-p)
	return tailToScore(tail)
}

// poissonTailScore is -log10 P(X >= x) for X Poisson(mu), x real, through the regularised lower
// incomplete gamma function: P(X >= x) = P(x, mu). The limit of nbTailScore as r grows; the
// tests hold the two together.
func poissonTailScore(x, mu float64) float64 {
	if !(x > mu) || !(x > 0) || !(mu > 0) {
		return 0
	}
	return tailToScore(mathext.GammaIncReg(x, mu))
}

func tailToScore(tail float64) float64 {
	switch {
	case math.IsNaN(tail):
		return 0
	case tail <= 0:
		return MaxScore
	case tail >= 1:
		return 0
	}
	return min(MaxScore, -math.Log10(tail))
}
