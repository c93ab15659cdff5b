//! Units: what the scan, the graphs, the store and the search treat as a neuron. A
//! model's units are its MLP neurons (`blocks.L.mlp.hook_post`, every layer), or the
//! latents of a sparse autoencoder read at one hook point of one layer.

use candle_core::{DType, Device, Tensor};

use super::hook::{Hook, HookPoint};
use super::sae::{Sae, SaeInfo};
use super::{ForwardRequest, LayerActivations, Model, TreeLayout};
use crate::error::{Error, Result};

/// What kind of unit an index holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnitKind {
    /// MLP neurons (`mlp.hook_post`).
    MlpNeurons,
    /// Latents of a sparse autoencoder (or transcoder).
    SaeLatents,
}

/// Which units a model (and an index built with it) has: the record every index keeps,
/// and that `info`, `show` and every JSON view report.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnitSet {
    /// MLP neurons or SAE latents.
    pub kind: UnitKind,
    /// The hook the units read, as TransformerLens names it: `blocks.L.NAME` for an
    /// SAE, `mlp.hook_post` (of every layer) for neurons.
    pub hook: String,
    /// Units per layer (neurons per layer, or the SAE's latents at its one layer).
    pub per_layer: usize,
    /// The SAE, for latents: file, SHA-256, format, architecture, shape.
    pub sae: Option<SaeInfo>,
}

impl UnitSet {
    /// The MLP neurons of a model with `per_layer` neurons a layer.
    pub fn mlp_neurons(per_layer: usize) -> UnitSet {
        UnitSet {
            kind: UnitKind::MlpNeurons,
            hook: HookPoint::MlpPost.name().to_string(),
            per_layer,
            sae: None,
        }
    }

    /// Whether `other` is the same units: kind, hook, count and SAE content (its
    /// SHA-256 and encoder; the path it was read from may differ).
    pub fn same_units(&self, other: &UnitSet) -> bool {
        let sae = |u: &UnitSet| {
            u.sae
                .as_ref()
                .map(|s| (s.sha256.clone(), s.architecture, s.hook, s.d_in))
        };
        self.kind == other.kind
            && self.hook == other.hook
            && self.per_layer == other.per_layer
            && sae(self) == sae(other)
    }

    /// The one layer units may be read at (an SAE's hook layer), or `None` (every layer).
    pub fn only_layer(&self) -> Option<usize> {
        self.sae.as_ref().map(|s| s.hook.layer)
    }

    /// `neuron` or `latent`: how a unit is called in messages and pages.
    pub fn unit_name(&self) -> &'static str {
        match self.kind {
            UnitKind::MlpNeurons => "neuron",
            UnitKind::SaeLatents => "latent",
        }
    }

    /// One line for `info` and page headers: `MLP neurons (mlp.hook_post)` or
    /// `SAE latents: 16384 at blocks.3.hook_resid_post (SAELens jumprelu, FILE)`.
    pub fn describe(&self) -> String {
        match &self.sae {
            None => format!("MLP neurons ({}), {} a layer", self.hook, self.per_layer),
            Some(s) => format!(
                "SAE latents: {} at {} ({} {}{}, {}, sha256 {}…)",
                s.d_sae,
                s.hook,
                s.format,
                s.architecture,
                if s.transcoder { ", transcoder" } else { "" },
                s.path.display(),
                &s.sha256[..s.sha256.len().min(12)]
            ),
        }
    }
}

impl Model {
    /// Makes the SAE's latents this model's units: [`Model::activations`],
    /// [`Model::neuron_activations`] and the packed passes then return latents (read at
    /// the SAE's hook layer only). Refused when the hook's layer or width does not fit.
    pub fn with_sae(mut self, sae: Sae) -> Result<Model> {
        let info = sae.info();
        self.check_layer(info.hook.layer).map_err(|_| {
            Error::InvalidRequest(format!(
                "{}: the SAE reads {}, but the model {} has layers 0..={}",
                info.path.display(),
                info.hook,
                self.info.name,
                self.info.n_layers - 1
            ))
        })?;
        let width = self.hook_width(info.hook.point);
        if info.d_in != width {
            return Err(Error::InvalidRequest(format!(
                "{}: the SAE's input width d_in is {}, but {} of the model {} has width {}",
                info.path.display(),
                info.d_in,
                info.hook,
                self.info.name,
                width
            )));
        }
        self.sae = Some(sae);
        Ok(self)
    }

    /// The units this model's activation calls return.
    pub fn units(&self) -> UnitSet {
        match &self.sae {
            None => UnitSet::mlp_neurons(self.info.n_neurons),
            Some(sae) => UnitSet {
                kind: UnitKind::SaeLatents,
                hook: sae.info().hook.to_string(),
                per_layer: sae.info().d_sae,
                sae: Some(sae.info().clone()),
            },
        }
    }

    /// Units per layer: MLP neurons, or the SAE's latents.
    pub fn unit_count(&self) -> usize {
        self.sae
            .as_ref()
            .map_or(self.info.n_neurons, |s| s.info().d_sae)
    }

    /// An error unless units may be read at `layer` (any layer for neurons, the
    /// hook's layer for SAE latents).
    pub(crate) fn check_unit_layer(&self, layer: usize) -> Result<()> {
        self.check_layer(layer)?;
        match &self.sae {
            Some(sae) if sae.info().hook.layer != layer => Err(Error::InvalidRequest(format!(
                "layer {layer}: the SAE's latents are read at {} only",
                sae.info().hook
            ))),
            _ => Ok(()),
        }
    }

    /// `units` (a selection, in that order) checked against the unit count.
    pub(crate) fn check_units(&self, units: &[usize]) -> Result<()> {
        let count = self.unit_count();
        if units.is_empty() {
            return Err(Error::InvalidRequest(format!(
                "no {} requested",
                self.units().unit_name()
            )));
        }
        if let Some(&n) = units.iter().find(|&&n| n >= count) {
            return Err(Error::InvalidRequest(format!(
                "{} {n} out of range: layers have {}s 0..={}",
                self.units().unit_name(),
                self.units().unit_name(),
                count - 1
            )));
        }
        Ok(())
    }

    /// The SAE's latents `latents` (all when `None`) for a padded id batch (plain or
    /// prefix-packed rows): the forward pass stops at the hook, the encoder runs on
    /// every position. `None` when the model has no SAE.
    pub(crate) fn sae_forward(
        &self,
        ids: &Tensor,
        tree: Option<&TreeLayout>,
        latents: Option<&[usize]>,
    ) -> Result<Option<Tensor>> {
        let Some(sae) = &self.sae else {
            return Ok(None);
        };
        let hook: Hook = sae.info().hook;
        let out = self.forward(
            ids,
            &ForwardRequest {
                layers: &[hook.layer],
                hook: hook.point,
                logits: false,
                tree,
                neurons: None,
            },
        )?;
        let values = out.activations[0].to_dtype(DType::F32)?;
        let (b, t, d) = values.dims3()?;
        let latents = sae.encode(&values.reshape((b * t, d))?, latents)?;
        let m = latents.dim(1)?;
        Ok(Some(latents.reshape((b, t, m))?))
    }

    /// Copies a `[batch, seq, units]` tensor to the host as one layer's activations.
    pub(crate) fn host_activations(
        &self,
        act: &Tensor,
        layer: usize,
        lengths: Vec<usize>,
    ) -> Result<LayerActivations> {
        let (batch, seq_len, n_neurons) = act.dims3()?;
        let data = act
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_device(&Device::Cpu)?
            .to_vec1::<f32>()?;
        Ok(LayerActivations {
            layer,
            batch,
            seq_len,
            n_neurons,
            lengths,
            data,
        })
    }
}
