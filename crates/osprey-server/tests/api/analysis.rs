//! The analysis routes over real HTTP with the real embedding model:
//! sentiment against the VADER reference, emotion on each path (lexicon by
//! default; model and ensemble with a tiny classifier made by
//! `transformers`), trajectories, summaries, topic sets and filtering, the
//! one-pass `/v1/analyze`, the result cache, long texts and bad input.

use serde_json::{json, Value};

use crate::helpers::{model_dir, repo_root, shared_app, spawn_app, test_settings, TestApp};

/// Chars `start..end` of `text` (the API's offsets are Unicode scalar values).
fn char_slice(text: &str, start: usize, end: usize) -> String {
    text.chars().skip(start).take(end - start).collect()
}

async fn ok_json(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.expect("json body");
    assert_eq!(status, 200, "{body}");
    body
}

async fn error_code(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status().as_u16(), status);
    let body: Value = resp.json().await.expect("json error body");
    body["error"]["code"].as_str().expect("error code").to_string()
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name_and_labels.split('{').next().unwrap_or_default()))
        .filter(|l| name_and_labels.split(['{', '}', ',']).skip(1).filter(|p| !p.is_empty()).all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn sentiment_matches_the_vader_reference() {
    let Some(app) = shared_app() else { return };
    let fixture: Value =
        serde_json::from_slice(&std::fs::read(repo_root().join("fixtures/vader/reference.json")).expect("fixture"))
            .expect("json");
    let cases: Vec<&Value> = fixture["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| !c["text"].as_str().unwrap_or_default().trim().is_empty())
        .step_by(97)
        .take(60)
        .collect();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().expect("text")).collect();
    let body = ok_json(app.post_json("/v1/sentiment", json!({ "inputs": texts })).await).await;
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), cases.len());
    for (r, c) in results.iter().zip(&cases) {
        for k in ["compound", "pos", "neu", "neg"] {
            let (got, want) = (r[k].as_f64().expect("score"), c[k].as_f64().expect("reference"));
            assert!((got - want).abs() < 1e-4, "{k} of {:?}: {got} vs {want}", c["text"]);
        }
        let compound = r["compound"].as_f64().expect("compound");
        let label = if compound >= 0.05 {
            "positive"
        } else if compound <= -0.05 {
            "negative"
        } else {
            "neutral"
        };
        assert_eq!(r["label"], label);
    }
    // A single string works too.
    let one = ok_json(app.post_json("/v1/sentiment", json!({ "inputs": "I love this!" })).await).await;
    assert_eq!(one["results"][0]["label"], "positive");
}

#[tokio::test]
async fn bad_analysis_requests_get_clear_4xx_errors() {
    let Some(app) = shared_app() else { return };
    let cases: Vec<(&str, Value, u16)> = vec![
        ("/v1/sentiment", json!({ "inputs": [] }), 422),
        ("/v1/sentiment", json!({ "inputs": ["fine", "  "] }), 422),
        ("/v1/sentiment", json!({ "inputs": 5 }), 400),
        ("/v1/sentiment", json!({ "inputs": vec!["x"; 300] }), 422),
        ("/v1/sentiment", json!({ "texts": ["unknown field"] }), 400),
        ("/v1/emotion", json!({ "inputs": ["ok"], "emotion": { "model_weight": -1.0 } }), 422),
        ("/v1/emotion", json!({ "inputs": ["ok"], "emotion": { "model_weight": 0.0, "vader_weight": 0.0 } }), 422),
        ("/v1/trajectory", json!({ "text": "" }), 422),
        ("/v1/trajectory", json!({ "text": "Fine.", "smoothing": { "method": "rolling", "window": 0 } }), 422),
        ("/v1/trajectory", json!({ "text": "Fine.", "smoothing": { "method": "wavelet" } }), 400),
        ("/v1/summarize", json!({ "text": "One. Two.", "k": 0 }), 422),
        ("/v1/summarize", json!({ "text": "One. Two.", "method": "magic" }), 400),
        ("/v1/filter", json!({ "topic_set": "no-such-set", "posts": [{ "id": "1", "title": "x" }] }), 404),
        ("/v1/filter", json!({ "topic_set": "x", "posts": [] }), 422),
        (
            "/v1/filter",
            json!({ "topic_set": "x", "posts": [{ "id": "a", "title": "x" }, { "id": "a", "title": "y" }] }),
            422,
        ),
        ("/v1/analyze", json!({ "posts": [{ "id": "1", "title": "x" }], "tasks": [] }), 422),
        ("/v1/analyze", json!({ "posts": [{ "id": "1", "title": "x" }], "tasks": ["topics"] }), 422),
        ("/v1/analyze", json!({ "posts": [{ "id": "1", "title": "x" }], "tasks": ["vibes"] }), 400),
        ("/v1/analyze", json!({ "posts": [{ "id": "1" }], "tasks": ["sentiment"] }), 422),
        (
            "/v1/analyze",
            json!({ "posts": [{ "id": "a", "title": "x" }, { "id": "a", "title": "y" }], "tasks": ["sentiment"] }),
            422,
        ),
    ];
    for (path, body, status) in cases {
        let resp = app.post_json(path, body.clone()).await;
        assert_eq!(resp.status().as_u16(), status, "{path} {body}");
        let err: Value = resp.json().await.expect("json error");
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{path} {body}: {err}");
    }
    let resp =
        app.client().put(app.url("/v1/topics/bad name")).json(&json!({ "topics": [{ "label": "a" }] })).send().await;
    assert_eq!(error_code(resp.expect("request"), 422).await, "validation_error");
    let resp = app.client().delete(app.url("/v1/topics/never-made")).send().await.expect("request");
    assert_eq!(error_code(resp, 404).await, "not_found");
}

#[tokio::test]
async fn emotion_without_a_model_comes_from_the_lexicon_and_counts_the_fallback() {
    let Some(app) = shared_app() else { return };
    let before = metric(&app.metrics().await, "osprey_emotion_fallbacks_total{reason=\"no_model\"}");
    let texts = ["I am absolutely furious about this!", "We won the cup, I'm so happy", "The meeting is at noon."];
    let body = ok_json(app.post_json("/v1/emotion", json!({ "inputs": texts })).await).await;
    let results = body["results"].as_array().expect("results");
    let labels: Vec<&str> = results.iter().map(|r| r["label"].as_str().expect("label")).collect();
    assert_eq!(labels, ["anger", "joy", "neutral"]);
    for r in results {
        assert_eq!(r["path"], "lexicon");
        let scores = r["scores"].as_object().expect("scores");
        assert_eq!(scores.len(), 7);
        let sum: f64 = scores.values().map(|v| v.as_f64().expect("p")).sum();
        assert!((sum - 1.0).abs() < 1e-5);
    }
    let after = metric(&app.metrics().await, "osprey_emotion_fallbacks_total{reason=\"no_model\"}");
    assert!(after >= before + 3.0, "fallbacks {before} -> {after}");
    let info = ok_json(app.get("/info").await).await;
    assert_eq!(info["analysis"]["emotion_model"], "none");
    assert!(info["analysis"]["vader"].as_str().is_some_and(|v| v.starts_with("ok (")), "{info}");
}

/// A server whose emotion model is the tiny DistilRoBERTa classifier.
fn model_app() -> Option<TestApp> {
    let model = model_dir()?;
    let mut s = test_settings(&model);
    s.analysis.emotion.model = repo_root().join("fixtures/tiny-cls/distilroberta").display().to_string();
    s.analysis.emotion.backend = osprey_engine::BackendChoice::Candle;
    Some(spawn_app(s))
}

#[tokio::test]
async fn emotion_model_and_ensemble_paths_match_transformers() {
    let Some(app) = model_app() else { return };
    let reference: Value = serde_json::from_slice(
        &std::fs::read(repo_root().join("fixtures/tiny-cls/distilroberta/reference.json")).expect("reference"),
    )
    .expect("json");
    let texts: Vec<String> = serde_json::from_value(reference["texts"].clone()).expect("texts");
    let probs: Vec<Vec<f64>> = serde_json::from_value(reference["text_probabilities"].clone()).expect("probabilities");
    let order = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"];

    // Model alone: exactly transformers' softmax.
    let body =
        ok_json(app.post_json("/v1/emotion", json!({ "inputs": texts, "emotion": { "enable_vader": false } })).await)
            .await;
    for (r, want) in body["results"].as_array().expect("results").iter().zip(&probs) {
        assert_eq!(r["path"], "model");
        for (label, w) in order.iter().zip(want) {
            let got = r["scores"][label].as_f64().expect("score");
            assert!((got - w).abs() < 1e-4, "{label}: {got} vs transformers {w}");
        }
    }
    // Default: the 70/30 ensemble with the VADER-derived distribution.
    let body = ok_json(app.post_json("/v1/emotion", json!({ "inputs": texts })).await).await;
    for (r, want) in body["results"].as_array().expect("results").iter().zip(&probs) {
        assert_eq!(r["path"], "ensemble");
        // These texts are neutral to VADER: its distribution is all neutral.
        for (label, w) in order.iter().zip(want) {
            let expect = 0.7 * w + if *label == "neutral" { 0.3 } else { 0.0 };
            let got = r["scores"][label].as_f64().expect("score");
            assert!((got - expect).abs() < 1e-4, "{label}: {got} vs {expect}");
        }
    }
    // A zero-weight model leaves only the VADER-derived distribution.
    let body = ok_json(
        app.post_json(
            "/v1/emotion",
            json!({ "inputs": texts, "emotion": { "model_weight": 0.0, "vader_weight": 1.0 } }),
        )
        .await,
    )
    .await;
    for r in body["results"].as_array().expect("results") {
        assert_eq!(r["path"], "ensemble");
        assert!((r["scores"]["neutral"].as_f64().expect("neutral") - 1.0).abs() < 1e-6, "{r}");
    }
    // A request may turn the model off: the lexicon answers and says so.
    let body = ok_json(
        app.post_json("/v1/emotion", json!({ "inputs": ["so angry"], "emotion": { "enable_model": false } })).await,
    )
    .await;
    assert_eq!(body["results"][0]["path"], "lexicon");
    let metrics = app.metrics().await;
    assert!(metric(&metrics, "osprey_emotion_path_total{path=\"model\"}") >= 3.0);
    assert!(metric(&metrics, "osprey_emotion_fallbacks_total{reason=\"disabled\"}") >= 1.0);

    let info = ok_json(app.get("/info").await).await;
    assert!(info["analysis"]["emotion_model"].as_str().is_some_and(|m| m.starts_with("ready")), "{info}");

    // A repeat is answered from the cache: neither model runs again.
    let fresh = json!({ "inputs": ["w7 w8 w9 w10"] });
    let first = ok_json(app.post_json("/v1/emotion", fresh.clone()).await).await;
    let classifier_before = app.analyzer.emotion.model_stats().expect("classifier loaded").sequences;
    let again = ok_json(app.post_json("/v1/emotion", fresh).await).await;
    assert_eq!(first, again);
    assert_eq!(app.analyzer.emotion.model_stats().expect("classifier loaded").sequences, classifier_before);
    let post = json!({ "posts": [{ "id": "m1", "title": "w1 w2", "body": "w3 w4. w5 w6!" }], "tasks": ["emotion", "summary"] });
    ok_json(app.post_json("/v1/analyze", post.clone()).await).await;
    let (classifier, embedder) =
        (app.analyzer.emotion.model_stats().expect("loaded").sequences, app.batcher().sequences);
    let cached = ok_json(app.post_json("/v1/analyze", post).await).await;
    assert_eq!(cached["results"][0]["cached"], true);
    assert_eq!(app.analyzer.emotion.model_stats().expect("loaded").sequences, classifier);
    assert_eq!(app.batcher().sequences, embedder);

    // Trajectories use the same path per sentence.
    let body = ok_json(app.post_json("/v1/trajectory", json!({ "text": "w1 w2 w3. w20! w4 w5?" })).await).await;
    assert_eq!(body["path"], "ensemble");
    assert_eq!(body["segments"].as_array().expect("segments").len(), 3);
}

#[tokio::test]
async fn repeated_requests_are_answered_from_the_result_cache() {
    let Some(app) = shared_app() else { return };
    let text = format!("A unique sentence for the cache test {}. It is great!", std::process::id());
    let hits = |m: &str, task: &str| {
        metric(m, &format!("osprey_result_cache_requests_total{{task=\"{task}\",result=\"hit\"}}"))
    };
    let before = app.metrics().await;
    let first = ok_json(app.post_json("/v1/emotion", json!({ "inputs": [text] })).await).await;
    let second = ok_json(app.post_json("/v1/emotion", json!({ "inputs": [text] })).await).await;
    assert_eq!(first, second);
    let traj1 = ok_json(app.post_json("/v1/trajectory", json!({ "text": text })).await).await;
    let traj2 = ok_json(app.post_json("/v1/trajectory", json!({ "text": text })).await).await;
    assert_eq!(traj1, traj2);
    let after = app.metrics().await;
    assert!(hits(&after, "emotion") >= hits(&before, "emotion") + 1.0);
    assert!(hits(&after, "trajectory") >= hits(&before, "trajectory") + 1.0);
    // Other options are another key.
    let other =
        ok_json(app.post_json("/v1/trajectory", json!({ "text": text, "smoothing": { "method": "none" } })).await)
            .await;
    assert_eq!(other["smoothing"]["method"], "none");
}

#[tokio::test]
async fn trajectory_reports_segments_with_offsets_and_an_arc() {
    let Some(app) = shared_app() else { return };
    let text = "It started as a wonderful, happy day. Everyone was smiling and laughing.\n\n\
                Then the news came. It was terrible, awful, heartbreaking. We cried for hours.\n\n\
                - Friends came to help.\n- By evening we felt hopeful again.\n\
                In the end it was a beautiful, joyful reunion! Émilie said \"thanks\" 😊.";
    let body = ok_json(
        app.post_json("/v1/trajectory", json!({ "text": text, "smoothing": { "method": "dct", "low_pass": 3 } })).await,
    )
    .await;
    let segs = body["segments"].as_array().expect("segments");
    assert!(segs.len() >= 8, "{} segments", segs.len());
    for (i, s) in segs.iter().enumerate() {
        assert_eq!(s["index"], i);
        let (start, end) = (s["start"].as_u64().expect("start") as usize, s["end"].as_u64().expect("end") as usize);
        assert_eq!(char_slice(text, start, end), s["text"].as_str().expect("text"));
        assert!(s["sentiment"]["compound"].is_f64() && s["emotion"]["label"].is_string());
    }
    assert!(
        segs.iter().all(|s| !s["text"].as_str().unwrap_or_default().starts_with("- ")),
        "list markers are not text"
    );
    let summary = &body["summary"];
    assert_eq!(summary["shape"], "fall-rise", "{summary}");
    assert_eq!(summary["arc"], "man in a hole");
    assert!(summary["troughs"].as_array().is_some_and(|t| !t.is_empty()));
    assert!(summary["volatility"].as_f64().expect("volatility") > 0.0);
    assert_eq!(body["path"], "lexicon");
}

#[tokio::test]
async fn long_texts_of_thousands_of_sentences_are_analysed_whole() {
    let Some(app) = shared_app() else { return };
    let sentences = [
        "The service was slow today.",
        "I love the new release!",
        "Nothing happened at all.",
        "This bug makes me furious.",
    ];
    let text: String = (0..2_000).map(|i| sentences[i % 4]).collect::<Vec<_>>().join(" ");
    let body = ok_json(
        app.post_json("/v1/trajectory", json!({ "text": text, "smoothing": { "method": "dct", "low_pass": 5 } })).await,
    )
    .await;
    assert_eq!(body["segments"].as_array().expect("segments").len(), 2_000);
    let last = &body["segments"][1999];
    assert_eq!(last["end"].as_u64().expect("end") as usize, text.chars().count());
    let body = ok_json(app.post_json("/v1/summarize", json!({ "text": text, "k": 2, "method": "tfidf" })).await).await;
    assert_eq!(body["total_sentences"], 2_000);
    assert_eq!(body["sentences"].as_array().expect("sentences").len(), 2);
}

#[tokio::test]
async fn summaries_pick_central_sentences_in_document_order() {
    let Some(app) = shared_app() else { return };
    let text = "Rust's borrow checker prevents data races at compile time. \
                My cat likes to sleep on the keyboard. \
                Ownership and borrowing in Rust make memory safety possible without a garbage collector. \
                The Rust compiler checks lifetimes so references never outlive their data. \
                It rained all afternoon.";
    for method in ["centroid", "lexrank", "textrank", "tfidf"] {
        let body =
            ok_json(app.post_json("/v1/summarize", json!({ "text": text, "k": 2, "method": method })).await).await;
        assert_eq!(body["method"], method);
        let chosen: Vec<u64> = body["sentences"]
            .as_array()
            .expect("sentences")
            .iter()
            .map(|s| s["index"].as_u64().expect("index"))
            .collect();
        assert_eq!(chosen.len(), 2);
        assert!(chosen.windows(2).all(|w| w[0] < w[1]), "document order: {chosen:?}");
        assert!(!chosen.contains(&1) && !chosen.contains(&4), "{method} chose off-topic sentences {chosen:?}");
        let s = &body["sentences"][0];
        let (start, end) = (s["start"].as_u64().expect("start") as usize, s["end"].as_u64().expect("end") as usize);
        assert_eq!(char_slice(text, start, end), s["text"].as_str().expect("text"));
    }
    // Fewer sentences than k: all of them.
    let body = ok_json(app.post_json("/v1/summarize", json!({ "text": "Only one sentence here." })).await).await;
    assert_eq!(body["sentences"].as_array().expect("sentences").len(), 1);
}

fn topic_body() -> Value {
    json!({
        "threshold": 0.3,
        "description": "what the watcher keeps",
        "topics": [
            { "label": "Rust programming", "examples": ["borrow checker errors", "cargo build is slow", "async Rust with tokio"] },
            { "label": "GPU computing", "examples": ["CUDA kernels", "matrix multiplication on the GPU"] },
            { "label": "databases", "examples": ["slow SQL queries", "PostgreSQL indexes"] },
        ]
    })
}

#[tokio::test]
async fn topic_sets_are_versioned_and_filter_posts() {
    let Some(app) = shared_app() else { return };
    let client = app.client();
    let url = app.url("/v1/topics/watch-tech");
    let v1: Value = ok_json(client.put(&url).json(&topic_body()).send().await.expect("put")).await;
    assert_eq!(v1["version"], 1);
    let v2: Value = ok_json(client.put(&url).json(&topic_body()).send().await.expect("put")).await;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["created_at"], v1["created_at"]);
    let got = ok_json(app.get("/v1/topics/watch-tech").await).await;
    assert_eq!(got["topics"].as_array().expect("topics").len(), 3);
    let list = ok_json(app.get("/v1/topics").await).await;
    assert!(list["sets"].as_array().expect("sets").iter().any(|s| s["name"] == "watch-tech"));

    let posts = json!([
        { "id": "p1", "title": "Fighting the borrow checker", "body": "My lifetimes are wrong and cargo refuses to compile my async code." },
        { "id": "p2", "title": "Index advice", "body": "This PostgreSQL query takes seconds even with an index on the column." },
        { "id": "p3", "title": "Banana bread", "body": "Mix three ripe bananas with flour and bake for an hour." },
    ]);
    let body = ok_json(app.post_json("/v1/filter", json!({ "topic_set": "watch-tech", "posts": posts })).await).await;
    assert_eq!(body["version"], 2);
    let r = body["results"].as_array().expect("results");
    assert_eq!(r[0]["id"], "p1");
    assert_eq!(r[0]["best_topic"], "Rust programming");
    assert_eq!(r[1]["best_topic"], "databases");
    assert_eq!(
        (r[0]["keep"].as_bool(), r[1]["keep"].as_bool(), r[2]["keep"].as_bool()),
        (Some(true), Some(true), Some(false))
    );
    for p in r {
        let (score, margin) = (p["score"].as_f64().expect("score"), p["margin"].as_f64().expect("margin"));
        let runner = p["scores"][p["runner_up"].as_str().expect("runner_up")].as_f64().expect("runner score");
        assert!((score - runner - margin).abs() < 1e-5);
    }
    assert_eq!(body["kept"], 2);
    // A request can override the threshold.
    let strict = ok_json(
        app.post_json("/v1/filter", json!({ "topic_set": "watch-tech", "posts": posts, "threshold": 0.99 })).await,
    )
    .await;
    assert_eq!(strict["kept"], 0);
    assert_eq!(strict["threshold"].as_f64().map(|t| (t * 100.0).round()), Some(99.0));
}

#[tokio::test]
async fn topic_sets_survive_a_restart() {
    let Some(model) = model_dir() else { return };
    let settings = test_settings(&model);
    let data = settings.server.data_dir.clone();
    let first = spawn_app(settings.clone());
    let put = first.client().put(first.url("/v1/topics/persisted")).json(&topic_body()).send().await.expect("put");
    ok_json(put).await;
    let mut again = test_settings(&model);
    again.server.data_dir = data;
    let second = spawn_app(again);
    let got = ok_json(second.get("/v1/topics/persisted").await).await;
    assert_eq!(got["version"], 1);
    let body = ok_json(
        second
            .post_json(
                "/v1/filter",
                json!({ "topic_set": "persisted", "posts": [{ "id": "1", "title": "CUDA kernel launch overhead" }] }),
            )
            .await,
    )
    .await;
    assert_eq!(body["results"][0]["best_topic"], "GPU computing");
}

#[tokio::test]
async fn analyze_runs_every_task_in_one_pass_and_agrees_with_the_single_routes() {
    let Some(app) = shared_app() else { return };
    let put = app.client().put(app.url("/v1/topics/analyze-set")).json(&topic_body()).send().await.expect("put");
    ok_json(put).await;
    let posts = json!([
        { "id": "a1", "title": "Cargo is slow", "body": "Every cargo build takes minutes. I hate waiting! The borrow checker is fine though. Tokio works great.", "author": "u1", "created": 1700000000, "persona_id": "dev" },
        { "id": "a2", "title": "Postgres help", "body": "My SQL query is slow. The index is not used. I'm worried about production." },
    ]);
    let req = json!({
        "posts": posts,
        "tasks": ["sentiment", "emotion", "trajectory", "summary", "topics"],
        "topic_set": "analyze-set",
        "summary_k": 2,
    });
    let body = ok_json(app.post_json("/v1/analyze", req.clone()).await).await;
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert!(body["embedded_sentences"].as_u64().expect("embedded") >= 8);
    for (r, p) in results.iter().zip(posts.as_array().expect("posts")) {
        assert_eq!(r["id"], p["id"]);
        assert_eq!(r["cached"], false);
        let text = format!("{}\n\n{}", p["title"].as_str().expect("title"), p["body"].as_str().expect("body"));
        let single = ok_json(app.post_json("/v1/sentiment", json!({ "inputs": [text] })).await).await;
        assert_eq!(r["sentiment"], single["results"][0]);
        let filter =
            ok_json(app.post_json("/v1/filter", json!({ "topic_set": "analyze-set", "posts": [p] })).await).await;
        assert_eq!(r["topics"]["best_topic"], filter["results"][0]["best_topic"]);
        let (a, b) =
            (r["topics"]["score"].as_f64().expect("score"), filter["results"][0]["score"].as_f64().expect("score"));
        assert!((a - b).abs() < 1e-4, "analyze {a} vs filter {b}");
        let traj = ok_json(app.post_json("/v1/trajectory", json!({ "text": text })).await).await;
        assert_eq!(r["trajectory"]["segments"], traj["segments"]);
        assert_eq!(r["segments"].as_u64(), traj["segments"].as_array().map(|s| s.len() as u64));
        assert_eq!(r["summary"]["sentences"].as_array().expect("summary").len(), 2);
        assert_eq!(r["emotion"]["path"], "lexicon");
    }
    assert_eq!(results[0]["topics"]["best_topic"], "Rust programming");
    assert_eq!(results[1]["topics"]["best_topic"], "databases");

    // The same request again: every post from the cache, nothing embedded.
    let again = ok_json(app.post_json("/v1/analyze", req).await).await;
    assert_eq!(again["embedded_sentences"], 0);
    for (a, b) in again["results"].as_array().expect("results").iter().zip(results) {
        assert_eq!(a["cached"], true);
        assert_eq!(a["summary"], b["summary"]);
        assert_eq!(a["topics"], b["topics"]);
    }
    // A TF-IDF summary stays TF-IDF even when topics embed the sentences.
    let tfidf = ok_json(app.post_json("/v1/analyze", json!({ "posts": [posts[0].clone()], "tasks": ["summary", "topics"], "topic_set": "analyze-set", "summary_method": "tfidf", "summary_k": 2 })).await).await;
    let text =
        format!("{}\n\n{}", posts[0]["title"].as_str().expect("title"), posts[0]["body"].as_str().expect("body"));
    let single =
        ok_json(app.post_json("/v1/summarize", json!({ "text": text, "k": 2, "method": "tfidf" })).await).await;
    assert_eq!(tfidf["results"][0]["summary"], single);

    // Only some tasks: the others are absent.
    let only = ok_json(
        app.post_json(
            "/v1/analyze",
            json!({ "posts": [{ "id": "x", "body": "Just sentiment, please." }], "tasks": ["sentiment"] }),
        )
        .await,
    )
    .await;
    let r = &only["results"][0];
    assert!(r["sentiment"].is_object() && r.get("emotion").is_none() && r.get("topics").is_none());
    assert_eq!(only["embedded_sentences"], 0);
}

#[tokio::test]
async fn a_topic_set_made_again_after_a_delete_is_not_served_from_the_old_cache() {
    let Some(app) = shared_app() else { return };
    let client = app.client();
    let url = app.url("/v1/topics/recreated");
    let post = json!({ "id": "r1", "title": "Slow SQL", "body": "The PostgreSQL query planner ignores my index." });
    let req = json!({ "posts": [post], "tasks": ["topics"], "topic_set": "recreated" });
    ok_json(client.put(&url).json(&topic_body()).send().await.expect("put")).await;
    let first = ok_json(app.post_json("/v1/analyze", req.clone()).await).await;
    assert_eq!(first["results"][0]["topics"]["best_topic"], "databases");
    let resp = client.delete(&url).send().await.expect("delete");
    assert_eq!(resp.status(), 204);
    let other = json!({ "topics": [{ "label": "cooking", "examples": ["baking bread"] }, { "label": "sport", "examples": ["football"] }] });
    let again = ok_json(client.put(&url).json(&other).send().await.expect("put")).await;
    assert!(again["version"].as_u64().expect("version") > 1, "versions are not reused: {again}");
    let second = ok_json(app.post_json("/v1/analyze", req).await).await;
    assert_eq!(second["results"][0]["cached"], false);
    assert!(["cooking", "sport"].contains(&second["results"][0]["topics"]["best_topic"].as_str().expect("topic")));
}

#[tokio::test]
async fn analysis_routes_are_in_the_openapi_document() {
    let Some(app) = shared_app() else { return };
    let doc = ok_json(app.get("/openapi.json").await).await;
    for path in [
        "/v1/sentiment",
        "/v1/emotion",
        "/v1/trajectory",
        "/v1/summarize",
        "/v1/topics",
        "/v1/topics/{name}",
        "/v1/filter",
        "/v1/analyze",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
}

#[tokio::test]
async fn hostile_texts_never_produce_5xx_on_any_analysis_route() {
    let Some(app) = shared_app() else { return };
    let put = app.client().put(app.url("/v1/topics/hostile")).json(&topic_body()).send().await.expect("put");
    ok_json(put).await;
    let texts: Vec<String> = vec![
        "\u{0}\u{1}\u{7f}".into(),
        "---".into(),
        "# ".into(),
        "- \n- \n> ".into(),
        "```\nunclosed code fence".into(),
        "😀".repeat(5_000),
        "a".repeat(60_000),
        "..........!!!!!!!!??????".repeat(200),
        "\u{202e}\u{200b}\u{feff}mixed bidi\u{2066}text".into(),
        "e\u{301}\u{301}\u{301}\u{301} combining".into(),
        "1. 2. 3. 4. 5.".into(),
        "Dr. Mr. Mrs. e.g. i.e. U.S. vs. etc.".into(),
        "http://x.com/a.b?c=d.e#f. www.y.org. z@w.io.".into(),
        (0..400).map(|i| format!("Sentence number {i} is NOT bad at all!! ")).collect(),
        "\r\n\r\n\t \u{a0}\u{3000}".repeat(100) + "x",
    ];
    for t in &texts {
        let requests = [
            ("/v1/sentiment", json!({ "inputs": [t] })),
            ("/v1/emotion", json!({ "inputs": [t] })),
            ("/v1/trajectory", json!({ "text": t, "smoothing": { "method": "dct", "low_pass": 1000 } })),
            ("/v1/summarize", json!({ "text": t, "k": 1000, "method": "textrank" })),
            ("/v1/filter", json!({ "topic_set": "hostile", "posts": [{ "id": "1", "body": t }] })),
            (
                "/v1/analyze",
                json!({ "posts": [{ "id": "1", "title": t, "body": t }], "tasks": ["sentiment", "emotion", "trajectory", "summary", "topics"], "topic_set": "hostile" }),
            ),
        ];
        for (path, body) in requests {
            let resp = app.post_json(path, body).await;
            let status = resp.status().as_u16();
            let text: Value = resp.json().await.expect("json body");
            assert!(status < 500, "{path} on {:?}…: {status} {text}", t.chars().take(40).collect::<String>());
            if status != 200 {
                assert!(text["error"]["message"].is_string(), "{path}: {text}");
            }
        }
    }
}
