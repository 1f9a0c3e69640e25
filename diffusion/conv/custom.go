package conv

import (
	. "github.com/gomlx/gomlx/core/graph"
)

// withGradient returns the value of forward(), whose reverse-mode gradient with respect to
// inputs is given by vjp: vjp receives the adjoint v of the output (same shape) and returns one
// gradient per input (nil for an input that needs none).
//
// forward is run on the original inputs, so it may share intermediate nodes with vjp (e.g. an
// im2col matrix computed once and used by both the forward matmul and the weight gradient).
// GoMLX only offers custom gradients on identity nodes; this helper wires them up through
// graph.InternalFusedOpCaller: the returned node carries a decomposed twin, decomposed(ids),
// built on identity copies of the inputs, whose gradient GoMLX computes in its place. The
// identities' custom gradients ignore the default adjoints and return vjp's. The twin's forward
// value and default gradient nodes are never used by an output, so the go backend drops them
// (dead-code elimination at compile time): no copies, no extra compute. decomposed must compute
// the same value as forward with differentiable ops only (it is the value used when GoMLX's
// op fusion is disabled, GOMLX_FUSION=0). forward is always called, before vjp.
func withGradient(inputs []*Node, forward func() *Node, decomposed func(ids []*Node) *Node, vjp func(v *Node) []*Node) *Node {
	var captured *Node // adjoint of the output, set when the gradient graph is built
	var grads []*Node
	ids := make([]*Node, len(inputs))
	for i, x := range inputs {
		ids[i] = IdentityWithCustomGradient(x, func(x, _ *Node) *Node {
			if grads == nil {
				grads = vjp(captured)
			}
			if grads[i] == nil {
				return ZerosLike(x)
			}
			return grads[i]
		})
	}
	out, fused := InternalFusedOpCaller(forward, func() *Node {
		return IdentityWithCustomGradient(decomposed(ids), func(_, v *Node) *Node {
			captured, grads = v, nil
			return v
		})
	}, true)
	if !fused {
		// Fusion disabled: the value is decomposed's; forward still runs, for the
		// intermediates vjp uses.
		forward()
	}
	return out
}
