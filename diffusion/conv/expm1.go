package conv

import (
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// GoMLX v0.28 defines no gradient for Expm1 ("no gradient is defined yet"), and the GELU
// forms here use Expm1 instead of Exp (see the package comment), also in graphs that are
// differentiated by autodiff (the decomposed GELU twins, gradients through inference graphs
// for guidance). This registers d/dx expm1(x) = expm1(x) + 1 in GoMLX's table of gradients,
// the extension point it documents for ops without one; a GoMLX version that defines its own
// is left alone.
func init() {
	if _, ok := VJPRegistration[NodeTypeExpm1]; ok {
		return
	}
	VJPRegistration[NodeTypeExpm1] = func(node *Node, vjpOutputs []*Node, _ shapes.Shape) []*Node {
		return []*Node{Mul(vjpOutputs[0], AddScalar(node, 1))}
	}
}
