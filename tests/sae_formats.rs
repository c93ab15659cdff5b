//! SAEs in the SAELens, Gemma Scope and sparsify layouts: read through the public API
//! and encoded, compared with float64 numpy encoders (`scripts/reference/tiny_saes.py`,
//! `fixtures/sae/inputs.json`); malformed folders refused by file and field.

use std::path::{Path, PathBuf};

use candle_core::Device;
use n2g_index::model::{Hook, InputNormalization, Sae, SaeArchitecture, SaeFormat};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sae")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixtures().join("inputs.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// Loads fixture `name`, with its hook given only when the file does not name it.
fn load(name: &str, spec: &Value) -> Sae {
    let hook: Hook = spec["hook"].as_str().unwrap().parse().unwrap();
    let given = (!spec["hook_in_file"].as_bool().unwrap()).then_some(hook);
    let path = fixtures().join(spec["path"].as_str().unwrap());
    let sae = Sae::load(&path, given, &Device::Cpu).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(sae.info().hook, hook, "{name}");
    sae
}

/// |got - want| <= 1e-4 (|want| + 1e-2): relative, with a floor for values near 0.
fn close(got: f32, want: f64) -> bool {
    (got as f64 - want).abs() <= 1e-4 * (want.abs() + 1e-2)
}

#[test]
fn every_fixture_encodes_as_the_float64_reference() {
    let r = reference();
    let saes = r["saes"].as_object().unwrap();
    assert_eq!(saes.len(), 9);
    for (name, spec) in saes {
        let sae = load(name, spec);
        let info = sae.info();
        let d_in = spec["d_in"].as_u64().unwrap() as usize;
        let d_sae = spec["d_sae"].as_u64().unwrap() as usize;
        assert_eq!((info.d_in, info.d_sae), (d_in, d_sae), "{name}");
        assert_eq!(info.sha256.len(), 64, "{name}");
        let format = match spec["format"].as_str().unwrap() {
            "sae_lens" => SaeFormat::SaeLens,
            "gemma_scope" => SaeFormat::GemmaScope,
            _ => SaeFormat::Sparsify,
        };
        assert_eq!(info.format, format, "{name}");
        let inputs = matrix(&r["inputs"][d_in.to_string()]);
        let rows: Vec<f32> = inputs.iter().flatten().map(|&v| v as f32).collect();
        let want = matrix(&spec["expected"]);
        let got = sae.encode_rows(&rows, None).unwrap();
        assert_eq!(got.len(), inputs.len() * d_sae, "{name}");
        for (t, want_row) in want.iter().enumerate() {
            let got_row = &got[t * d_sae..(t + 1) * d_sae];
            for (i, (&g, &w)) in got_row.iter().zip(want_row).enumerate() {
                assert!(close(g, w), "{name} token {t} latent {i}: {g} vs {w}");
            }
            if let Some(sets) = spec["topk_sets"].as_array() {
                let kept: Vec<u64> = sets[t]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect();
                let SaeArchitecture::TopK { k } = info.architecture else {
                    panic!("{name}: not TopK")
                };
                assert_eq!(kept.len(), k, "{name}");
                for (i, &g) in got_row.iter().enumerate() {
                    assert!(g == 0.0 || kept.contains(&(i as u64)), "{name} {t} {i}");
                }
            }
        }
        // A selection (out of order, repeated) equals those columns of the full call, up
        // to the f32 rounding of a product of another shape.
        let ids: Vec<usize> = [d_sae - 1, 0, 7, 3, 7, d_sae / 2].to_vec();
        let sel = sae.encode_rows(&rows, Some(&ids)).unwrap();
        for t in 0..inputs.len() {
            for (j, &i) in ids.iter().enumerate() {
                let (a, b) = (sel[t * ids.len() + j], got[t * d_sae + i]);
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{name} {t} {i}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn the_files_settings_are_reported() {
    let r = reference();
    let saes = &r["saes"];
    let info = |name: &str| load(name, &saes[name]).info().clone();
    let std = info("saelens_standard");
    assert_eq!(std.architecture, SaeArchitecture::Relu);
    assert!(std.apply_b_dec_to_input && !std.transcoder);
    assert_eq!(
        info("saelens_jumprelu").architecture,
        SaeArchitecture::JumpRelu
    );
    assert!(!info("saelens_jumprelu").apply_b_dec_to_input);
    assert_eq!(
        info("saelens_topk").architecture,
        SaeArchitecture::TopK { k: 8 }
    );
    assert_eq!(
        info("saelens_norm_rescale").normalization,
        InputNormalization::ConstantNormRescale
    );
    // The factor the script wrote to activation_scaler.json.
    assert_eq!(
        info("saelens_expected_average").normalization,
        InputNormalization::Scale {
            factor: 0.6180339887
        }
    );
    let gs = info("gemma_scope");
    assert!(!gs.apply_b_dec_to_input && gs.architecture == SaeArchitecture::JumpRelu);
    let tc = info("sparsify_transcoder");
    assert!(tc.transcoder && !tc.apply_b_dec_to_input);
    assert_eq!(tc.architecture, SaeArchitecture::TopK { k: 6 });
    assert!(info("sparsify_topk").apply_b_dec_to_input);
}

fn refused(path: &Path, hook: Option<Hook>) -> String {
    Sae::load(path, hook, &Device::Cpu)
        .expect_err("refused")
        .to_string()
}

#[test]
fn hooks_are_required_where_the_file_has_none_and_must_agree() {
    let f = fixtures();
    let e = refused(&f.join("gemma_scope/params.npz"), None);
    assert!(e.contains("--hook") && e.contains("params.npz"), "{e}");
    let e = refused(&f.join("sparsify_transcoder/layers.0.mlp"), None);
    assert!(e.contains("--hook") && e.contains("transcoder"), "{e}");
    // The Gemma Scope folder stands for its params.npz.
    let h: Hook = "blocks.5.hook_resid_post".parse().unwrap();
    let sae = Sae::load(&f.join("gemma_scope"), Some(h), &Device::Cpu).unwrap();
    assert!(sae.info().path.ends_with("params.npz"));
    let wrong: Hook = "blocks.2.hook_resid_pre".parse().unwrap();
    for (path, file_hook) in [
        ("saelens_standard", "blocks.1.hook_resid_pre"),
        ("saelens_jumprelu", "blocks.2.hook_resid_post"),
        ("sparsify_topk/layers.1", "blocks.1.hook_resid_post"),
    ] {
        let e = refused(&f.join(path), Some(wrong));
        assert!(
            e.contains(file_hook) && e.contains("blocks.2.hook_resid_pre"),
            "{e}"
        );
    }
}

#[test]
fn bad_inputs_to_the_encoder_are_refused() {
    let r = reference();
    let sae = load("saelens_topk", &r["saes"]["saelens_topk"]);
    let e = sae.encode_rows(&[0.0; 33], None).unwrap_err().to_string();
    assert!(e.contains("33") && e.contains("32"), "{e}");
    let e = sae
        .encode_rows(&[0.0; 32], Some(&[128]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("128"), "{e}");
    assert!(sae.encode_rows(&[], None).unwrap().is_empty());
    assert!(sae.encode_rows(&[0.5; 64], Some(&[])).unwrap().is_empty());
}

/// Copies a fixture folder into a temporary one to damage it.
fn copy(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
    to
}

fn edit_cfg(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let p = dir.join("cfg.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    edit(v.as_object_mut().unwrap());
    std::fs::write(&p, v.to_string()).unwrap();
}

#[test]
fn malformed_folders_are_refused_by_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let none = refused(tmp.path(), None);
    assert!(
        none.contains("SAELens") && none.contains("sparsify") && none.contains("params.npz"),
        "{none}"
    );

    let d = copy("saelens_standard", &tmp.path().join("a"));
    edit_cfg(&d, |c| {
        c.insert("architecture".into(), "gated".into());
    });
    let e = refused(&d, None);
    assert!(
        e.contains("cfg.json") && e.contains("`architecture` is `gated`"),
        "{e}"
    );

    let d = copy("saelens_standard", &tmp.path().join("b"));
    edit_cfg(&d, |c| {
        c.insert("d_sae".into(), 97.into());
    });
    let e = refused(&d, None);
    assert!(
        e.contains("sae_weights.safetensors") && e.contains("W_enc") && e.contains("97"),
        "{e}"
    );

    let d = copy("sparsify_topk/layers.1", &tmp.path().join("c"));
    edit_cfg(&d, |c| {
        c.insert("k".into(), 0.into());
    });
    let e = refused(&d, None);
    assert!(e.contains("cfg.json") && e.contains("`k` is 0"), "{e}");

    let d = copy("saelens_topk", &tmp.path().join("d"));
    edit_cfg(&d, |c| {
        c.insert("activation_fn_kwargs".into(), serde_json::json!({"k": 129}));
    });
    let e = refused(&d, None);
    assert!(e.contains("`activation_fn_kwargs.k` is 129"), "{e}");

    // A NaN threshold, written as a one-tensor change of the safetensors file.
    let d = copy("saelens_jumprelu", &tmp.path().join("e"));
    let w = d.join("sae_weights.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let start = header["threshold"]["data_offsets"][0].as_u64().unwrap() as usize + 8 + header_len;
    bytes[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&w, bytes).unwrap();
    let e = refused(&d, None);
    assert!(
        e.contains("threshold") && e.contains("NaN") && e.contains("sae_weights.safetensors"),
        "{e}"
    );

    // A Gemma Scope archive that is not a zip file, and a path that does not exist.
    let h: Hook = "blocks.0.hook_resid_post".parse().unwrap();
    let gs = tmp.path().join("params.npz");
    std::fs::write(&gs, b"not a zip file").unwrap();
    let e = refused(&gs, Some(h));
    assert!(e.contains("params.npz") && e.contains("zip"), "{e}");
    let e = refused(&tmp.path().join("a/cfg.json.missing"), None);
    assert!(e.contains("cfg.json.missing"), "{e}");

    // A folder with cfg.json only.
    let d = tmp.path().join("f");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("cfg.json"), "{}").unwrap();
    let e = refused(&d, None);
    assert!(
        e.contains("cfg.json without") && e.contains("SAELens"),
        "{e}"
    );
}

#[test]
fn a_truncated_npz_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixtures().join("gemma_scope/params.npz")).unwrap();
    let h: Hook = "blocks.0.hook_resid_post".parse().unwrap();
    for cut in [bytes.len() / 3, bytes.len() - 30, 100] {
        let p = tmp.path().join(format!("cut{cut}.npz"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let e = refused(&p, Some(h));
        assert!(e.contains(&format!("cut{cut}.npz")), "{e}");
    }
}
