//! Builds an ONNX graph of a BERT-family encoder straight from its weights, so
//! that any model directory can run on ONNX Runtime without a Python export
//! step or a downloaded `.onnx` file.
//!
//! The graph uses ONNX Runtime's fused contrib operators (`com.microsoft`
//! `Attention`, `SkipLayerNormalization`, `BiasGelu`/`FastGelu`), the same
//! kernels ONNX Runtime's transformer optimizer would produce from a PyTorch
//! export, so the CPU kernels run fused without relying on pattern matching.
//!
//! # Layout
//! - a hand-declared subset of `onnx.proto` (only the messages used here);
//! - [`GraphBuilder`]: names, nodes and initializers;
//! - [`export_bert`]: the encoder graph.
//!
//! Graph inputs (all `int64`, `[batch, seq]`): `input_ids`, `attention_mask`,
//! `token_type_ids`, `position_ids`. Output: `last_hidden_state`
//! (`float`, `[batch, seq, hidden]`).
//!
//! # int8
//! With [`ExportOptions::int8`] every projection's weights are stored as
//! int8 with one scale per output column (symmetric, zero point 0), and its
//! input is quantised per batch to uint8 at run time (`DynamicQuantizeLinear`):
//! the attention block becomes `QAttention` and the other three projections
//! `MatMulInteger` followed by the product of the two scales, the graph ONNX
//! Runtime's own dynamic quantiser writes and its optimiser fuses. Embedding
//! tables, layer norms, biases, softmax and activations stay in f32.

use std::collections::HashMap;

use candle_core::Tensor;
use prost::Message;

use crate::error::{EngineError, Result};
use crate::model::{weight, ModelConfig};

mod proto {
    //! The subset of `onnx.proto` (IR version 8) this exporter writes.
    #![allow(clippy::all)]

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetIdProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetIdProto {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<AttributeProto>,
        #[prost(string, tag = "7")]
        pub domain: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttributeProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(float, tag = "2")]
        pub f: f32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<TypeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProto {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TensorTypeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorTypeProto {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(int64, optional, tag = "1")]
        pub dim_value: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub dim_param: Option<String>,
    }
}

use proto::*;

const FLOAT: i32 = 1;
const INT8: i32 = 3;
const INT32: i32 = 6;
const INT64: i32 = 7;
const ATTR_FLOAT: i32 = 1;
const ATTR_INT: i32 = 2;
const MS: &str = "com.microsoft";

/// An attribute value for [`GraphBuilder::node`].
enum Attr {
    F(f32),
    I(i64),
}

/// Accumulates nodes and initializers with unique value names.
#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    counter: usize,
}

impl GraphBuilder {
    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// Adds a node with one output and returns the output's name.
    fn node(&mut self, op: &str, domain: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let mut outs = self.node_n(op, domain, inputs, attrs, 1);
        outs.pop().unwrap_or_default()
    }

    /// Adds a node with `n` outputs and returns their names.
    fn node_n(&mut self, op: &str, domain: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>, n: usize) -> Vec<String> {
        let base = self.fresh(&op.to_lowercase());
        let outputs: Vec<String> = (0..n).map(|k| if k == 0 { base.clone() } else { format!("{base}_{k}") }).collect();
        let attribute = attrs
            .into_iter()
            .map(|(name, a)| {
                let mut p = AttributeProto { name: name.to_string(), ..Default::default() };
                match a {
                    Attr::F(f) => (p.f, p.r#type) = (f, ATTR_FLOAT),
                    Attr::I(i) => (p.i, p.r#type) = (i, ATTR_INT),
                }
                p
            })
            .collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.clone(),
            name: format!("{base}_node"),
            op_type: op.to_string(),
            attribute,
            domain: domain.to_string(),
        });
        outputs
    }

    /// Adds an f32 initializer from `values` with `dims`.
    fn init(&mut self, hint: &str, dims: &[usize], values: &[f32]) -> String {
        let name = self.fresh(hint);
        let mut raw = Vec::with_capacity(values.len() * 4);
        for v in values {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        self.inits.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: raw,
        });
        name
    }

    /// Adds an i64 initializer (indices for `Gather`).
    fn init_i64(&mut self, hint: &str, dims: &[usize], values: &[i64]) -> String {
        let name = self.fresh(hint);
        self.inits.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: INT64,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    /// Adds an int8 initializer.
    fn init_i8(&mut self, hint: &str, dims: &[usize], values: &[i8]) -> String {
        let name = self.fresh(hint);
        self.inits.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: INT8,
            name: name.clone(),
            raw_data: values.iter().map(|&v| v as u8).collect(),
        });
        name
    }

    /// Adds a weight tensor unchanged.
    fn tensor(&mut self, hint: &str, t: &Tensor) -> Result<String> {
        let dims = t.dims().to_vec();
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        Ok(self.init(hint, &dims, &values))
    }
}

fn value_info(name: &str, elem_type: i32, dims: &[&str]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d.parse::<i64>() {
            Ok(v) => Dimension { dim_value: Some(v), dim_param: None },
            Err(_) => Dimension { dim_value: None, dim_param: Some((*d).to_string()) },
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto { elem_type, shape: Some(TensorShapeProto { dim }) }),
        }),
    }
}

/// How [`export_bert_with`] builds the graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// The last layer computes the first token's row only (see [`export_bert_with`]).
    pub first_token_only: bool,
    /// Projections in int8 (see the module's documentation).
    pub int8: bool,
    /// With `int8`, weights use 7 bits (−63..=63). CPUs without VNNI
    /// multiply uint8 by int8 with an instruction that saturates at 16 bits
    /// on pairs of products; 7-bit weights keep every pair in range.
    pub reduce_range: bool,
}

/// Symmetric per-column int8 quantisation of a `[rows, cols]` matrix:
/// the values and one scale per column (`w ≈ q × scale`).
pub fn quantize_columns(w: &[f32], rows: usize, cols: usize, reduce_range: bool) -> (Vec<i8>, Vec<f32>) {
    let top: f32 = if reduce_range { 63.0 } else { 127.0 };
    let mut scales = vec![0f32; cols];
    for row in w.chunks_exact(cols).take(rows) {
        for (s, v) in scales.iter_mut().zip(row) {
            *s = s.max(v.abs());
        }
    }
    for s in &mut scales {
        // An all-zero column quantises to zeros with any scale.
        *s = if *s > 0.0 { *s / top } else { 1.0 };
    }
    let q = w
        .chunks_exact(cols)
        .take(rows)
        .flat_map(|row| row.iter().zip(&scales).map(|(v, s)| (v / s).round().clamp(-top, top) as i8))
        .collect();
    (q, scales)
}

impl GraphBuilder {
    /// What an int8 product of `x` and the `[in, out]` weight `w` reads: the
    /// int8 weight and its column scales (initializers), and `x` quantised
    /// at run time with its scale and zero point.
    fn int8_operands(&mut self, hint: &str, x: &str, w: &Tensor, opts: &ExportOptions) -> Result<[String; 5]> {
        let (rows, cols) = w.dims2()?;
        let (q, scales) = quantize_columns(&w.flatten_all()?.to_vec1::<f32>()?, rows, cols, opts.reduce_range);
        let wq = self.init_i8(&format!("{hint}_q"), &[rows, cols], &q);
        let ws = self.init(&format!("{hint}_scale"), &[cols], &scales);
        let [xq, xs, xz]: [String; 3] = self
            .node_n("DynamicQuantizeLinear", "", &[x], vec![], 3)
            .try_into()
            .map_err(|_| EngineError::Backend("DynamicQuantizeLinear has three outputs".into()))?;
        Ok([wq, ws, xq, xs, xz])
    }

    /// `x · w` for a `[in, out]` weight: a plain `MatMul` in f32, or with
    /// `int8` the quantised form (bias not included in either).
    fn projection(&mut self, hint: &str, x: &str, w: &Tensor, opts: &ExportOptions) -> Result<String> {
        if !opts.int8 {
            let w = self.tensor(hint, w)?;
            return Ok(self.node("MatMul", "", &[x, &w], vec![]));
        }
        let [wq, ws, xq, xs, xz] = &self.int8_operands(hint, x, w, opts)?;
        let acc = self.node("MatMulInteger", "", &[xq, wq, xz], vec![]);
        let acc = self.node("Cast", "", &[&acc], vec![("to", Attr::I(i64::from(FLOAT)))]);
        let scale = self.node("Mul", "", &[xs, ws], vec![]);
        Ok(self.node("Mul", "", &[&acc, &scale], vec![]))
    }

    /// Self-attention over `x` with the fused `[hidden, 3 × hidden]` QKV
    /// weight and its bias: `Attention` in f32, `QAttention` with `int8`.
    fn attention(
        &mut self,
        hint: &str,
        x: &str,
        (qkv_w, qkv_b): (&Tensor, &str),
        mask: &str,
        heads: i64,
        opts: &ExportOptions,
    ) -> Result<String> {
        let attrs = vec![("num_heads", Attr::I(heads))];
        if !opts.int8 {
            let w = self.tensor(hint, qkv_w)?;
            return Ok(self.node("Attention", MS, &[x, &w, qkv_b, mask], attrs));
        }
        let [wq, ws, xq, xs, xz] = &self.int8_operands(hint, x, qkv_w, opts)?;
        Ok(self.node("QAttention", MS, &[xq, wq, qkv_b, xs, ws, mask, xz], attrs))
    }
}

/// Transposed copy of a PyTorch `Linear` weight (`[out, in]` → `[in, out]`).
fn linear_t(t: &Tensor) -> Result<Tensor> {
    Ok(t.t()?.contiguous()?)
}

/// Serialises the encoder described by `config` and `weights` as an ONNX
/// model (bytes of a `ModelProto`) whose output is every token's hidden state.
pub fn export_bert(config: &ModelConfig, weights: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    export_bert_with(config, weights, &ExportOptions::default())
}

/// Like [`export_bert`], built as `opts` says. With `first_token_only`, the last layer computes
/// only the first token's row after attention (its keys and values still
/// come from every token), and the output is `[batch, 1, hidden]`. That is
/// all `cls` pooling and classification heads read, and it skips the last
/// layer's output projection and feed-forward block for every other token:
/// about a seventh of a 6-layer encoder's arithmetic.
pub fn export_bert_with(
    config: &ModelConfig,
    weights: &HashMap<String, Tensor>,
    opts: &ExportOptions,
) -> Result<Vec<u8>> {
    let first_token_only = opts.first_token_only;
    super::check_supported(config)?;
    let h = config.hidden_size;
    let eps = config.layer_norm_eps as f32;
    let w = |names: &[&str]| weight(weights, names);
    let mut g = GraphBuilder::default();

    // Embeddings: word + position + token type, then LayerNorm.
    let word = g.tensor("word_embeddings", w(&["embeddings.word_embeddings.weight"])?)?;
    let pos = g.tensor("position_embeddings", w(&["embeddings.position_embeddings.weight"])?)?;
    let we = g.node("Gather", "", &[&word, "input_ids"], vec![("axis", Attr::I(0))]);
    let pe = g.node("Gather", "", &[&pos, "position_ids"], vec![("axis", Attr::I(0))]);
    let mut emb = g.node("Add", "", &[&we, &pe], vec![]);
    if let Ok(tt) = w(&["embeddings.token_type_embeddings.weight"]) {
        let tt = g.tensor("token_type_embeddings", tt)?;
        let te = g.node("Gather", "", &[&tt, "token_type_ids"], vec![("axis", Attr::I(0))]);
        emb = g.node("Add", "", &[&emb, &te], vec![]);
    }
    let gamma = g.tensor("emb_ln_gamma", w(&["embeddings.LayerNorm.weight", "embeddings.LayerNorm.gamma"])?)?;
    let beta = g.tensor("emb_ln_beta", w(&["embeddings.LayerNorm.bias", "embeddings.LayerNorm.beta"])?)?;
    let mut x = g.node(
        "LayerNormalization",
        "",
        &[&emb, &gamma, &beta],
        vec![("axis", Attr::I(-1)), ("epsilon", Attr::F(eps))],
    );
    let mask = g.node("Cast", "", &["attention_mask"], vec![("to", Attr::I(i64::from(INT32)))]);

    for i in 0..config.num_hidden_layers {
        let p = |s: &str| format!("encoder.layer.{i}.{s}");
        let get = |s: &str| w(&[p(s).as_str()]);
        let ln = |s: &str| -> Result<(&Tensor, &Tensor)> {
            Ok((
                w(&[p(&format!("{s}.weight")).as_str(), p(&format!("{s}.gamma")).as_str()])?,
                w(&[p(&format!("{s}.bias")).as_str(), p(&format!("{s}.beta")).as_str()])?,
            ))
        };
        // Fused QKV projection: [hidden, 3 * hidden], Q | K | V columns.
        let qkv_w = Tensor::cat(
            &[
                &linear_t(get("attention.self.query.weight")?)?,
                &linear_t(get("attention.self.key.weight")?)?,
                &linear_t(get("attention.self.value.weight")?)?,
            ],
            1,
        )?;
        let qkv_b = Tensor::cat(
            &[get("attention.self.query.bias")?, get("attention.self.key.bias")?, get("attention.self.value.bias")?],
            0,
        )?;
        let qkv_b = g.tensor(&format!("l{i}_qkv_b"), &qkv_b)?;
        let heads = config.num_attention_heads as i64;
        let mut attn = g.attention(&format!("l{i}_qkv_w"), &x, (&qkv_w, &qkv_b), &mask, heads, opts)?;
        if first_token_only && i + 1 == config.num_hidden_layers {
            // From here on only the first token's row: [batch, 1, hidden].
            let first = g.init_i64("first_token", &[1], &[0]);
            attn = g.node("Gather", "", &[&attn, &first], vec![("axis", Attr::I(1))]);
            x = g.node("Gather", "", &[&x, &first], vec![("axis", Attr::I(1))]);
        }
        let o_w = linear_t(get("attention.output.dense.weight")?)?;
        let o_b = g.tensor(&format!("l{i}_attn_out_b"), get("attention.output.dense.bias")?)?;
        let o = g.projection(&format!("l{i}_attn_out_w"), &attn, &o_w, opts)?;
        let (ln1_g, ln1_b) = ln("attention.output.LayerNorm")?;
        let ln1_g = g.tensor(&format!("l{i}_ln1_g"), ln1_g)?;
        let ln1_b = g.tensor(&format!("l{i}_ln1_b"), ln1_b)?;
        let x1 = g.node("SkipLayerNormalization", MS, &[&o, &x, &ln1_g, &ln1_b, &o_b], vec![("epsilon", Attr::F(eps))]);

        let i_w = linear_t(get("intermediate.dense.weight")?)?;
        let i_b = g.tensor(&format!("l{i}_ffn_in_b"), get("intermediate.dense.bias")?)?;
        let inter = g.projection(&format!("l{i}_ffn_in_w"), &x1, &i_w, opts)?;
        let act = match config.hidden_act.as_str() {
            "gelu" => g.node("BiasGelu", MS, &[&inter, &i_b], vec![]),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => g.node("FastGelu", MS, &[&inter, &i_b], vec![]),
            "relu" => {
                let biased = g.node("Add", "", &[&inter, &i_b], vec![]);
                g.node("Relu", "", &[&biased], vec![])
            }
            other => return Err(EngineError::Unsupported(format!("activation {other}"))),
        };
        let out_w = linear_t(get("output.dense.weight")?)?;
        let out_b = g.tensor(&format!("l{i}_ffn_out_b"), get("output.dense.bias")?)?;
        let out = g.projection(&format!("l{i}_ffn_out_w"), &act, &out_w, opts)?;
        let (ln2_g, ln2_b) = ln("output.LayerNorm")?;
        let ln2_g = g.tensor(&format!("l{i}_ln2_g"), ln2_g)?;
        let ln2_b = g.tensor(&format!("l{i}_ln2_b"), ln2_b)?;
        x = g.node("SkipLayerNormalization", MS, &[&out, &x1, &ln2_g, &ln2_b, &out_b], vec![("epsilon", Attr::F(eps))]);
    }
    g.nodes.push(NodeProto {
        input: vec![x],
        output: vec!["last_hidden_state".into()],
        name: "output_identity".into(),
        op_type: "Identity".into(),
        ..Default::default()
    });

    let dims = ["batch", "seq"];
    let model = ModelProto {
        ir_version: 8,
        producer_name: "osprey".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        opset_import: vec![
            OperatorSetIdProto { domain: String::new(), version: 17 },
            OperatorSetIdProto { domain: MS.into(), version: 1 },
        ],
        graph: Some(GraphProto {
            name: "encoder".into(),
            node: g.nodes,
            initializer: g.inits,
            input: ["input_ids", "attention_mask", "token_type_ids", "position_ids"]
                .iter()
                .map(|n| value_info(n, INT64, &dims))
                .collect(),
            output: vec![value_info(
                "last_hidden_state",
                FLOAT,
                &["batch", if first_token_only { "1" } else { "seq" }, &h.to_string()],
            )],
        }),
    };
    Ok(model.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_quantisation_round_trips_within_half_a_step() {
        // 3 rows × 4 columns: mixed signs, a zero column, a tiny column.
        let w = [0.5, -2.0, 0.0, 1e-6, -0.25, 1.0, 0.0, -3e-6, 0.125, 0.5, 0.0, 2e-6];
        for (reduce_range, top) in [(false, 127i8), (true, 63i8)] {
            let (q, scales) = quantize_columns(&w, 3, 4, reduce_range);
            assert_eq!(q.len(), 12);
            assert_eq!(scales.len(), 4);
            for (i, (v, q)) in w.iter().zip(&q).enumerate() {
                let s = scales[i % 4];
                assert!((v - f32::from(*q) * s).abs() <= s / 2.0 + f32::EPSILON, "w[{i}] = {v}, q {q}, scale {s}");
                assert!((-top..=top).contains(q), "w[{i}] quantised to {q} outside ±{top}");
            }
            // Each column's largest magnitude maps to the top of the range.
            assert_eq!(q[1], -top);
            assert_eq!(q[0], top);
            assert_eq!(q[7], -top);
            // The all-zero column stays zero.
            assert!([q[2], q[6], q[10]].iter().all(|&v| v == 0));
        }
    }
}
