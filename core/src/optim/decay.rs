//! Weight decay's loss term. The decay itself is applied by the step (coupled L2 adds `λ·W` to
//! the gradient the rule sees, decoupled shrinks the weights first); the book reports the matching
//! `0.5·λ·ΣW²` with the loss, computed here.

use super::{DecayScope, Optimizer, WeightDecay};
use crate::params::Params;

impl Optimizer {
    /// [`WeightDecay::L2`], else 0. Add it to the reported loss to match the book.
    // nothing to compile for a `const` optimizer without L2 decay
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn decay_loss(&self, params: &Params) -> f32 {
        match self.weight_decay {
            WeightDecay::L2(l) => decay_loss_scoped(params, l, self.decay_scope),
            _ => 0.0,
        }
    }
}

/// The book's weight-decay loss term `0.5·λ·ΣW²` over the [`ParamKind::Weight`](crate::ParamKind::Weight) tensors: per
/// tensor `0.5·λ·Σ w²` (sum in index order from 0), added up in allocation order, as the book's
/// `weight_decay += 0.5 * lambda * np.sum(W ** 2)` loop does.
pub fn weight_decay_loss(params: &Params, lambda: f32) -> f32 {
    decay_loss_scoped(params, lambda, DecayScope::WeightsOnly)
}

fn decay_loss_scoped(params: &Params, lambda: f32, scope: DecayScope) -> f32 {
    let values = params.values();
    let mut total = 0.0f32;
    for e in params.entries().iter().filter(|e| scope.applies_to(e.kind)) {
        let mut s = 0.0f32;
        for &w in values.get(e.range()).unwrap_or(&[]) {
            s += w * w;
        }
        total += 0.5 * lambda * s;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParamKind, ParamStorage, Shape};

    #[test]
    fn decay_loss_book_case() {
        // layer_grads.json WeightDecay: W = [-1.25, -0.75, -0.25, 0.25, 0.75, 1.25], λ = 0.1 → 0.21875.
        let mut ps = ParamStorage::<8, 4>::new();
        let mut p = ps.params();
        let w = p.alloc(Shape::new(2, 3), ParamKind::Weight).unwrap();
        let b = p.alloc(Shape::row(2), ParamKind::Bias).unwrap();
        p.value_mut(w).unwrap().copy_from_slice(&[-1.25, -0.75, -0.25, 0.25, 0.75, 1.25]);
        p.value_mut(b).unwrap().copy_from_slice(&[10.0, 10.0]);
        assert_eq!(weight_decay_loss(&p, 0.1), 0.21875);
        let o = Optimizer::sgd().with_weight_decay(WeightDecay::L2(0.1));
        assert_eq!(o.decay_loss(&p), 0.21875);
        assert_eq!(o.with_decay_scope(DecayScope::AllTrainable).decay_loss(&p), 0.21875 + 0.5 * 0.1 * 200.0);
    }
}
