//! The {= kind =} mutating admission webhook: the API server lets it change a {= kind =} before
//! the object is validated and stored.

use opkit::prelude::*;
use opkit::webhook::{AdmissionRequest, Mutator, Verdict};

use super::{= kind =};

/// Fills in what a {= kind =} leaves out: the label naming the operator that manages it.
pub struct {= kind =}Defaults;

impl Mutator<{= kind =}> for {= kind =}Defaults {
    async fn mutate(
        &self,
        _request: &AdmissionRequest<{= kind =}>,
        {= var =}: &mut {= kind =},
    ) -> Verdict {
        {= var =}
            .labels_mut()
            .entry("app.kubernetes.io/managed-by".into())
            .or_insert_with(|| "{= name =}".into());
        Verdict::allow()
    }
}
