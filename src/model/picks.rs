//! One pass, several layers: chosen units of several layers from one forward pass that
//! stops at the deepest of them. The graph stage asks for this when neurons of
//! neighbouring layers share a chunk: a sequence that neurons of layers 9 and 10 both
//! need runs once, to layer 10, and layer 9's neurons read the pass on its way.

use super::hook::HookPoint;
use super::prefix::PackedRow;
use super::{ForwardRequest, LayerActivations, Model, TreeLayout};
use crate::error::{Error, Result};
use candle_core::Tensor;

/// The units asked of one layer: the layer and its unit indices.
pub type LayerPick<'a> = (usize, &'a [usize]);

impl Model {
    /// For each `(layer, units)` of `picks` (layers strictly ascending), those units'
    /// activations for a batch of sequences, from one pass that stops at the deepest
    /// layer (`LayerActivations::get(b, t, i)` is `units[i]`). The deepest layer computes
    /// only its units' columns, as [`Model::neuron_activations`] does; a layer below it
    /// is computed whole (the pass needs its MLP output) and its units picked. With one
    /// pick this is [`Model::neuron_activations`] itself.
    pub fn picked_activations<S: AsRef<[u32]>>(
        &self,
        batch: &[S],
        picks: &[LayerPick],
    ) -> Result<Vec<LayerActivations>> {
        if let [(layer, units)] = picks {
            return Ok(vec![self.neuron_activations(batch, *layer, units)?]);
        }
        self.check_picks(picks)?;
        let (ids, lengths) = self.pad_batch(batch)?;
        self.picked_forward(&ids, lengths, None, picks)
    }

    /// [`Model::picked_activations`] for prefix-packed rows (as
    /// [`Model::packed_activations`]); with one pick it is that call itself.
    pub fn packed_picked_activations(
        &self,
        rows: &[&PackedRow],
        picks: &[LayerPick],
    ) -> Result<Vec<LayerActivations>> {
        if let [(layer, units)] = picks {
            return Ok(vec![self.packed_activations(rows, *layer, Some(units))?]);
        }
        self.check_picks(picks)?;
        let (ids, lengths, layout) = self.packed_ids(rows)?;
        self.picked_forward(&ids, lengths, Some(&layout), picks)
    }

    /// Several picks need MLP neurons of distinct, ascending layers, each a valid
    /// selection.
    fn check_picks(&self, picks: &[LayerPick]) -> Result<()> {
        if picks.is_empty() {
            return Err(Error::InvalidRequest("no layer requested".into()));
        }
        if picks.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(Error::InvalidRequest(
                "layers of a multi-layer request must be distinct and ascending".into(),
            ));
        }
        for (layer, units) in picks {
            // An SAE's latents sit at one layer: two picks cannot both be valid.
            self.check_unit_layer(*layer)?;
            self.check_units(units)?;
        }
        Ok(())
    }

    fn picked_forward(
        &self,
        ids: &Tensor,
        lengths: Vec<usize>,
        tree: Option<&TreeLayout>,
        picks: &[LayerPick],
    ) -> Result<Vec<LayerActivations>> {
        let layers: Vec<usize> = picks.iter().map(|p| p.0).collect();
        let (_, last_units) = picks.last().expect("checked non-empty");
        let columns = self.neuron_columns(last_units)?;
        let out = self.forward(
            ids,
            &ForwardRequest {
                layers: &layers,
                hook: HookPoint::MlpPost,
                logits: false,
                tree,
                neurons: Some(&columns),
            },
        )?;
        let mut result = Vec::with_capacity(picks.len());
        for (i, (act, (layer, units))) in out.activations.iter().zip(picks).enumerate() {
            // A whole layer's units are picked on the device: only they reach the host.
            let act = if i + 1 == picks.len() {
                act.clone()
            } else {
                act.index_select(&self.neuron_columns(units)?, 2)?
            };
            result.push(self.host_activations(&act, *layer, lengths.clone())?);
        }
        Ok(result)
    }
}
