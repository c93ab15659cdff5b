//! EleutherAI sparsify folders: `cfg.json` + `sae.safetensors` (`encoder.weight
//! [d_sae, d_in]`, `encoder.bias`, `W_dec [d_sae, d_in]`, `b_dec`). TopK: `relu(x
//! W^T + b)` of `x - b_dec` (of `x` itself for a transcoder, `transcode: true`), the
//! `k` largest kept.
//!
//! sparsify names each folder by the Hugging Face module it hooks and stores no hook in
//! the file: `layers.L` (a block's output) reads `blocks.L.hook_resid_post`, and
//! `layers.L.mlp` (the MLP's output) `blocks.L.hook_mlp_out` (models without a norm
//! after the MLP). Any other name, and every transcoder (it reads the MLP's input:
//! the normalized residual times the norm's scale, which no TransformerLens hook point
//! names), needs the hook from the caller.

use std::path::Path;

use candle_core::Tensor;

use super::cfg::Cfg;
use super::{
    check_k, expect_shape, finite_f32, resolve_hook, InputNormalization, Read, SaeArchitecture,
    SaeFormat,
};
use crate::error::{Error, Result};
use crate::model::hook::{Hook, HookPoint};
use crate::model::safetensors::SafetensorsFile;

/// Reads a sparsify folder.
pub(super) fn read(dir: &Path, given: Option<Hook>) -> Result<Read> {
    let cfg_path = dir.join("cfg.json");
    let cfg = Cfg::read(&cfg_path)?;
    let d_in = cfg.required_usize("d_in")?;
    if d_in == 0 {
        return Err(cfg.bad("d_in", "is 0"));
    }
    match cfg.str("activation")?.unwrap_or("topk") {
        "topk" => {}
        other => return Err(cfg.bad("activation", format!("is `{other}`; supported: topk"))),
    }
    let transcoder = cfg.bool("transcode")?.unwrap_or(false);
    let hook = if transcoder && given.is_none() {
        return Err(Error::InvalidOption {
            field: "hook",
            message: format!(
                "{}: a transcoder reads its MLP's input, which its folder name does not \
                 give as a hook point; give it with --hook",
                dir.display()
            ),
        });
    } else if transcoder {
        resolve_hook(dir, None, given)?
    } else {
        resolve_hook(dir, folder_hook(dir), given)?
    };

    let path = dir.join("sae.safetensors");
    let file = SafetensorsFile::open(&path)?;
    let from_file = file
        .shape("encoder.weight")
        .and_then(|s| s.first().copied());
    let d_sae = match (cfg.usize("num_latents")?, cfg.usize("expansion_factor")?) {
        (Some(n), _) if n > 0 => n,
        (_, Some(e)) if e > 0 => e
            .checked_mul(d_in)
            .ok_or_else(|| cfg.bad("expansion_factor", "times d_in overflows"))?,
        _ => from_file.ok_or_else(|| Error::bad_model(&path, "no tensor `encoder.weight`"))?,
    };
    let k = cfg.required_usize("k")?;
    check_k(&cfg_path, "k", k, d_sae)?;
    let load = |name: &str, shape: &[usize]| -> Result<Tensor> {
        let t = finite_f32(&path, name, file.load(name)?)?;
        expect_shape(&path, name, &t, shape)?;
        Ok(t)
    };
    let w_rows = load("encoder.weight", &[d_sae, d_in])?;
    let b_enc = load("encoder.bias", &[d_sae])?;
    let b_dec = load("b_dec", &[d_in])?;
    if let Some(s) = file.shape("W_dec") {
        if s != [d_sae, d_in] {
            return Err(Error::bad_model(
                &path,
                format!(
                    "tensor `W_dec` has shape {s:?}, expected {:?}",
                    [d_sae, d_in]
                ),
            ));
        }
    }
    Ok(Read {
        format: SaeFormat::Sparsify,
        architecture: SaeArchitecture::TopK { k },
        hook,
        d_in,
        d_sae,
        apply_b_dec_to_input: !transcoder,
        normalization: InputNormalization::None,
        transcoder,
        w_rows: w_rows.contiguous()?,
        b_enc,
        b_dec,
        threshold: None,
    })
}

/// The hook point a sparsify folder name stands for (`layers.L`, `layers.L.mlp`,
/// GPT-2's `h.L`, with or without a `model.`/`transformer.`/`gpt_neox.` prefix).
fn folder_hook(dir: &Path) -> Option<(Hook, String)> {
    let name = dir.file_name()?.to_str()?;
    let rest = ["model.", "transformer.", "gpt_neox."]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    let (kw, tail) = rest.split_once('.')?;
    if kw != "layers" && kw != "h" {
        return None;
    }
    let (layer, sub) = match tail.split_once('.') {
        Some((l, s)) => (l, Some(s)),
        None => (tail, None),
    };
    let point = match sub {
        None => HookPoint::ResidPost,
        Some("mlp") => HookPoint::MlpOut,
        Some(_) => return None,
    };
    let hook = Hook {
        layer: layer.parse().ok()?,
        point,
    };
    Some((hook, format!("its folder `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_map_to_hook_points() {
        let hook = |name: &str| folder_hook(Path::new(name)).map(|(h, _)| h.to_string());
        assert_eq!(
            hook("layers.6").as_deref(),
            Some("blocks.6.hook_resid_post")
        );
        assert_eq!(
            hook("x/layers.6.mlp").as_deref(),
            Some("blocks.6.hook_mlp_out")
        );
        assert_eq!(
            hook("model.layers.0").as_deref(),
            Some("blocks.0.hook_resid_post")
        );
        assert_eq!(hook("h.11").as_deref(), Some("blocks.11.hook_resid_post"));
        assert_eq!(hook("layers.6.self_attn"), None);
        assert_eq!(hook("layers.x"), None);
        assert_eq!(hook("embed_tokens"), None);
    }
}
