//! SAELens folders: `cfg.json` + `sae_weights.safetensors` (`W_enc [d_in, d_sae]`,
//! `b_enc`, `W_dec [d_sae, d_in]`, `b_dec`, and `threshold` for JumpReLU).
//!
//! Config layouts of SAELens 3 to 6: `architecture` `standard` (ReLU, or TopK when
//! `activation_fn`/`activation_fn_str` is `topk`), `jumprelu` or `topk`; `k` flat or
//! under `activation_fn_kwargs`; the hook flat (`hook_name`, or the older `hook_point`)
//! or under `metadata` (SAELens 6); `apply_b_dec_to_input` (default true) and
//! `normalize_activations`.

use std::path::Path;

use candle_core::Tensor;
use serde_json::Value;

use super::cfg::Cfg;
use super::{
    check_k, expect_shape, finite_f32, resolve_hook, InputNormalization, Read, SaeArchitecture,
    SaeFormat,
};
use crate::error::{Error, Result};
use crate::model::hook::Hook;
use crate::model::safetensors::SafetensorsFile;

/// Reads a SAELens folder.
pub(super) fn read(dir: &Path, given: Option<Hook>) -> Result<Read> {
    let cfg_path = dir.join("cfg.json");
    let cfg = Cfg::read(&cfg_path)?;
    let d_in = cfg.required_usize("d_in")?;
    let d_sae = cfg.required_usize("d_sae")?;
    for (field, v) in [("d_in", d_in), ("d_sae", d_sae)] {
        if v == 0 {
            return Err(cfg.bad(field, "is 0"));
        }
    }
    let architecture = architecture(&cfg, d_sae)?;
    let apply_b_dec_to_input = cfg.bool("apply_b_dec_to_input")?.unwrap_or(true);
    let normalization = normalization(&cfg, dir)?;
    let hook = hook(&cfg, given)?;

    let path = dir.join("sae_weights.safetensors");
    let file = SafetensorsFile::open(&path)?;
    let load = |name: &str, shape: &[usize]| -> Result<Tensor> {
        let t = finite_f32(&path, name, file.load(name)?)?;
        expect_shape(&path, name, &t, shape)?;
        Ok(t)
    };
    let w_enc = load("W_enc", &[d_in, d_sae])?;
    let b_enc = load("b_enc", &[d_sae])?;
    let b_dec = load("b_dec", &[d_in])?;
    match file.shape("W_dec") {
        Some(s) if s == [d_sae, d_in] => {}
        Some(s) => {
            return Err(Error::bad_model(
                &path,
                format!(
                    "tensor `W_dec` has shape {s:?}, expected {:?}",
                    [d_sae, d_in]
                ),
            ))
        }
        None => return Err(Error::bad_model(&path, "no tensor `W_dec` in the file")),
    }
    let threshold = match architecture {
        SaeArchitecture::JumpRelu if file.shape("threshold").is_none() => {
            if file.shape("log_threshold").is_some() {
                Some(finite_f32(
                    &path,
                    "log_threshold",
                    load("log_threshold", &[d_sae])?.exp()?,
                )?)
            } else {
                return Err(Error::bad_model(
                    &path,
                    "no tensor `threshold` in the file (cfg.json says `jumprelu`)",
                ));
            }
        }
        SaeArchitecture::JumpRelu => Some(load("threshold", &[d_sae])?),
        _ => None,
    };
    Ok(Read {
        format: SaeFormat::SaeLens,
        architecture,
        hook,
        d_in,
        d_sae,
        apply_b_dec_to_input,
        normalization,
        transcoder: false,
        w_rows: w_enc.t()?.contiguous()?,
        b_enc,
        b_dec,
        threshold,
    })
}

/// The activation function `cfg.json` declares.
fn architecture(cfg: &Cfg, d_sae: usize) -> Result<SaeArchitecture> {
    let arch = cfg.str("architecture")?.unwrap_or("standard");
    let act = match cfg.str("activation_fn")? {
        Some(a) => Some(("activation_fn", a)),
        None => cfg
            .str("activation_fn_str")?
            .map(|a| ("activation_fn_str", a)),
    };
    let topk = || -> Result<SaeArchitecture> {
        let (field, k) = match cfg.usize("k")? {
            Some(k) => ("k", k),
            None => (
                "activation_fn_kwargs.k",
                cfg.usize("activation_fn_kwargs.k")?.ok_or_else(|| {
                    cfg.bad(
                        "k",
                        "is missing (a TopK SAE needs `k` or `activation_fn_kwargs.k`)",
                    )
                })?,
            ),
        };
        check_k(cfg.path, field, k, d_sae)?;
        Ok(SaeArchitecture::TopK { k })
    };
    match arch {
        "standard" => match act {
            None | Some((_, "relu")) => Ok(SaeArchitecture::Relu),
            Some((_, "topk")) => topk(),
            Some((field, other)) => {
                Err(cfg.bad(field, format!("is `{other}`; supported: relu, topk")))
            }
        },
        "jumprelu" => Ok(SaeArchitecture::JumpRelu),
        "topk" => topk(),
        other => Err(cfg.bad(
            "architecture",
            format!("is `{other}`; supported: standard, jumprelu, topk"),
        )),
    }
}

/// How the input is scaled (`normalize_activations`).
fn normalization(cfg: &Cfg, dir: &Path) -> Result<InputNormalization> {
    let field = "normalize_activations";
    match cfg.get(field) {
        None | Some(Value::Bool(false)) => Ok(InputNormalization::None),
        Some(Value::String(s)) => match s.as_str() {
            "none" => Ok(InputNormalization::None),
            "constant_norm_rescale" => Ok(InputNormalization::ConstantNormRescale),
            "expected_average_only_in" => Ok(InputNormalization::Scale {
                factor: scaling_factor(cfg, dir)?,
            }),
            other => Err(cfg.bad(
                field,
                format!(
                    "is `{other}`; supported: none, constant_norm_rescale, expected_average_only_in"
                ),
            )),
        },
        Some(v) => Err(cfg.bad(field, format!("is {v}, not a normalization name"))),
    }
}

/// The factor of `expected_average_only_in`, from (first found) `cfg.json`
/// `norm_scaling_factor` (the field of SAELens's pretrained-SAE directory),
/// `activation_scaler.json` `scaling_factor` (SAELens 6's trainer) or
/// `activations_store_state.safetensors` `estimated_norm_scaling_factor` (SAELens 3-5
/// checkpoints).
fn scaling_factor(cfg: &Cfg, dir: &Path) -> Result<f64> {
    let check = |path: &Path, field: &str, v: Option<f64>| -> Result<f64> {
        match v {
            Some(f) if f.is_finite() && f > 0.0 => Ok(f),
            _ => Err(Error::bad_model(
                path,
                format!("`{field}` is not a positive number"),
            )),
        }
    };
    if let Some(v) = cfg.get("norm_scaling_factor") {
        return check(cfg.path, "norm_scaling_factor", v.as_f64());
    }
    let scaler = dir.join("activation_scaler.json");
    if scaler.is_file() {
        let c = Cfg::read(&scaler)?;
        return check(
            &scaler,
            "scaling_factor",
            c.get("scaling_factor").and_then(Value::as_f64),
        );
    }
    let store = dir.join("activations_store_state.safetensors");
    if store.is_file() {
        let name = "estimated_norm_scaling_factor";
        let t = SafetensorsFile::open(&store)?.load(name)?;
        let v = t
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        return check(&store, name, (v.len() == 1).then(|| v[0]));
    }
    Err(cfg.bad(
        "normalize_activations",
        "is `expected_average_only_in` but no scaling factor was found: add \
         `norm_scaling_factor` to cfg.json, or put activation_scaler.json \
         (`scaling_factor`) or activations_store_state.safetensors \
         (`estimated_norm_scaling_factor`) beside it",
    ))
}

/// The hook `cfg.json` names (`metadata.hook_name`, else `hook_name`, else the older
/// SAELens configs' `hook_point`), agreed with the
/// caller's. A name n2g-index does not know is refused unless the caller gives one.
fn hook(cfg: &Cfg, given: Option<Hook>) -> Result<Hook> {
    let mut named = None;
    for field in [
        "metadata.hook_name",
        "meta.hook_name",
        "hook_name",
        "hook_point",
    ] {
        if let Some(name) = cfg.str(field)? {
            named = Some((field, name));
            break;
        }
    }
    let Some((field, name)) = named else {
        return resolve_hook(cfg.path, None, given);
    };
    match name.parse::<Hook>() {
        Ok(h) => resolve_hook(cfg.path, Some((h, format!("cfg.json `{field}`"))), given),
        Err(_) if given.is_some() => resolve_hook(cfg.path, None, given),
        Err(e) => Err(cfg.bad(
            field,
            format!("is not a hook point n2g-index reads ({e}); give one with --hook"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_of(dir: &Path, json: &str) -> std::path::PathBuf {
        let p = dir.join("cfg.json");
        std::fs::write(&p, json).unwrap();
        p
    }

    #[test]
    fn architectures_and_k_are_read_from_every_layout() {
        let dir = tempfile::tempdir().unwrap();
        let arch = |json: &str| {
            let p = cfg_of(dir.path(), json);
            let cfg = Cfg::read(&p).unwrap();
            architecture(&cfg, 64).map_err(|e| e.to_string())
        };
        assert_eq!(arch("{}"), Ok(SaeArchitecture::Relu));
        assert_eq!(
            arch(r#"{"architecture": "topk", "k": 5}"#),
            Ok(SaeArchitecture::TopK { k: 5 })
        );
        assert_eq!(
            arch(r#"{"activation_fn": "topk", "activation_fn_kwargs": {"k": 3}}"#),
            Ok(SaeArchitecture::TopK { k: 3 })
        );
        assert_eq!(
            arch(r#"{"architecture": "jumprelu"}"#),
            Ok(SaeArchitecture::JumpRelu)
        );
        for (json, needle) in [
            (r#"{"architecture": "gated"}"#, "`architecture` is `gated`"),
            (r#"{"architecture": "topk", "k": 0}"#, "`k` is 0"),
            (r#"{"architecture": "topk", "k": 65}"#, "`k` is 65"),
            (r#"{"architecture": "topk"}"#, "`k` is missing"),
            (
                r#"{"activation_fn_str": "tanh-relu"}"#,
                "`activation_fn_str` is `tanh-relu`",
            ),
        ] {
            let e = arch(json).unwrap_err();
            assert!(e.contains(needle) && e.contains("cfg.json"), "{e}");
        }
    }

    #[test]
    fn hook_names_flat_or_under_metadata_and_unknown_names() {
        let dir = tempfile::tempdir().unwrap();
        let hook_of = |json: &str, given: Option<Hook>| {
            let p = cfg_of(dir.path(), json);
            hook(&Cfg::read(&p).unwrap(), given).map_err(|e| e.to_string())
        };
        let h: Hook = "blocks.3.hook_resid_pre".parse().unwrap();
        assert_eq!(
            hook_of(r#"{"hook_name": "blocks.3.hook_resid_pre"}"#, None),
            Ok(h)
        );
        assert_eq!(
            hook_of(r#"{"hook_point": "blocks.3.hook_resid_pre"}"#, None),
            Ok(h)
        );
        assert_eq!(
            hook_of(
                r#"{"metadata": {"hook_name": "blocks.3.hook_resid_pre"}}"#,
                Some(h)
            ),
            Ok(h)
        );
        let e = hook_of(r#"{"hook_name": "blocks.3.attn.hook_z"}"#, None).unwrap_err();
        assert!(e.contains("hook_name") && e.contains("--hook"), "{e}");
        assert_eq!(
            hook_of(r#"{"hook_name": "model.layers.3"}"#, Some(h)),
            Ok(h)
        );
        let other: Hook = "blocks.4.hook_resid_pre".parse().unwrap();
        let e = hook_of(r#"{"hook_name": "blocks.3.hook_resid_pre"}"#, Some(other)).unwrap_err();
        assert!(
            e.contains("blocks.3.hook_resid_pre") && e.contains("blocks.4.hook_resid_pre"),
            "{e}"
        );
    }

    #[test]
    fn unknown_normalizations_and_missing_factors_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let norm = |json: &str| {
            let p = cfg_of(dir.path(), json);
            normalization(&Cfg::read(&p).unwrap(), dir.path()).map_err(|e| e.to_string())
        };
        assert_eq!(
            norm(r#"{"normalize_activations": false}"#),
            Ok(InputNormalization::None)
        );
        let e = norm(r#"{"normalize_activations": "layer_norm"}"#).unwrap_err();
        assert!(e.contains("layer_norm"), "{e}");
        let e = norm(r#"{"normalize_activations": "expected_average_only_in"}"#).unwrap_err();
        assert!(e.contains("activation_scaler.json"), "{e}");
        assert_eq!(
            norm(
                r#"{"normalize_activations": "expected_average_only_in", "norm_scaling_factor": 2.5}"#
            ),
            Ok(InputNormalization::Scale { factor: 2.5 })
        );
        std::fs::write(
            dir.path().join("activation_scaler.json"),
            r#"{"scaling_factor": null}"#,
        )
        .unwrap();
        let e = norm(r#"{"normalize_activations": "expected_average_only_in"}"#).unwrap_err();
        assert!(
            e.contains("activation_scaler.json") && e.contains("scaling_factor"),
            "{e}"
        );
    }
}
