//! `/openapi.json` and a self-contained `/docs` page that renders it (no
//! assets from elsewhere, so it works on closed networks).

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "osprey",
        description = "Self-hosted embedding and text-analysis server. TEI- and OpenAI-compatible."
    ),
    paths(
        super::tei::embed,
        super::tei::similarity,
        super::tei::tokenize,
        super::tei::info,
        super::openai::embeddings,
        super::analysis::sentiment,
        super::analysis::emotion,
        super::analysis::trajectory,
        super::analysis::summarize,
        super::analysis::list_topics,
        super::analysis::get_topics,
        super::analysis::put_topics,
        super::analysis::delete_topics,
        super::analysis::filter,
        super::analysis::analyze,
        super::store::get_post,
        super::store::list_posts,
        super::store::get_analysis,
        super::store::emotion_stats,
        super::store::refresh_emotion_stats,
        super::performance::cache_stats,
        super::performance::cache_clear,
        super::performance::database,
        super::observe::health,
        super::observe::stats,
        super::observe::resources,
        super::observe::memory_report,
        super::observe::memory_cleanup,
        super::observe::tasks,
        super::observe::alerts,
        super::observe::recommendations,
        super::observe::live,
        super::config::get_config,
        super::config::put_config,
        super::probes::health,
        super::probes::ready,
        super::probes::metrics,
    ),
    components(schemas(
        osprey_types::api::Input,
        osprey_types::api::EmbedRequest,
        osprey_types::api::SimilarityRequest,
        osprey_types::api::SimilarityInputs,
        osprey_types::api::TokenizeRequest,
        osprey_types::api::SimpleToken,
        osprey_types::api::InfoResponse,
        osprey_types::api::AnalysisDetails,
        osprey_types::api::OpenAiEmbeddingsRequest,
        osprey_types::api::OpenAiEmbeddingsResponse,
        osprey_types::api::ProbeResponse,
        osprey_types::analysis::SentimentRequest,
        osprey_types::analysis::SentimentResponse,
        osprey_types::analysis::SentimentScores,
        osprey_types::analysis::SentimentLabel,
        osprey_types::analysis::EmotionRequest,
        osprey_types::analysis::EmotionResponse,
        osprey_types::analysis::EmotionScores,
        osprey_types::analysis::EmotionOptions,
        osprey_types::analysis::EmotionPath,
        osprey_types::analysis::SmoothingSpec,
        osprey_types::analysis::TrajectoryRequest,
        osprey_types::analysis::TrajectoryResponse,
        osprey_types::analysis::TrajectorySegment,
        osprey_types::analysis::TrajectorySummary,
        osprey_types::analysis::ArcPoint,
        osprey_types::analysis::SummaryMethod,
        osprey_types::analysis::SummarizeRequest,
        osprey_types::analysis::SummaryResult,
        osprey_types::analysis::SummarySentence,
        osprey_types::analysis::TopicSpec,
        osprey_types::analysis::TopicSetRequest,
        osprey_types::analysis::TopicSetInfo,
        osprey_types::analysis::TopicSetList,
        osprey_types::analysis::Post,
        osprey_types::analysis::FilterRequest,
        osprey_types::analysis::FilterResponse,
        osprey_types::analysis::FilterResult,
        osprey_types::analysis::TopicMatch,
        osprey_types::analysis::Task,
        osprey_types::analysis::AnalyzeRequest,
        osprey_types::analysis::AnalyzeResponse,
        osprey_types::analysis::PostAnalysis,
        osprey_types::store::StoredPost,
        osprey_types::store::StoredAnalysis,
        osprey_types::store::PostPage,
        osprey_types::store::EmotionBucket,
        osprey_types::store::EmotionStatsResponse,
        super::performance::ClearRequest,
        super::observe::Component,
        crate::observe::memory::CleanupRequest,
        super::config::Tunables,
        osprey_types::error::ErrorBody,
        osprey_types::error::ErrorCode,
    ))
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi)).route("/docs", get(docs))
}

async fn openapi() -> Json<serde_json::Value> {
    Json(document())
}

/// The OpenAPI document with each operation's credential requirement, taken
/// from the same classifier the security middleware enforces: `admin`
/// (bearer token) on admin routes; `api_key` on inference routes, which
/// need one only once inference keys are configured.
pub fn document() -> serde_json::Value {
    use serde_json::json;
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    doc["components"]["securitySchemes"] = json!({
        "admin": { "type": "http", "scheme": "bearer",
                   "description": "--admin-token, security.admin_token or an admin key from security.keys_file" },
        "api_key": { "type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "--api-key or an inference key from security.keys_file (also accepted as a bearer token)" },
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(ops) = item.as_object_mut() else { continue };
            for (method, op) in ops.iter_mut() {
                if !["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) || !op.is_object() {
                    continue;
                }
                let Ok(m) = method.to_uppercase().parse::<axum::http::Method>() else { continue };
                let security = match crate::security::classify(&m, path) {
                    crate::security::Access::Admin => json!([{ "admin": [] }]),
                    crate::security::Access::Infer => json!([{ "api_key": [] }, {}]),
                    crate::security::Access::Observe | crate::security::Access::Public => continue,
                };
                op["security"] = security;
            }
        }
    }
    doc
}

async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>osprey API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1d2330}
h1{margin-bottom:0}.op{border:1px solid #d8dde6;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.m{font-weight:700;text-transform:uppercase;margin-right:.6rem}.get{color:#1a7f37}.post{color:#0b5cad}
pre{background:#f5f7fa;padding:.6rem;overflow:auto;font-size:13px}code{font-size:13px}
</style></head><body>
<h1>osprey API</h1><p>Machine-readable: <a href="/openapi.json">/openapi.json</a></p><div id="ops">Loading…</div>
<script>
fetch('/openapi.json').then(r=>r.json()).then(doc=>{
  const ops=document.getElementById('ops');ops.textContent='';
  const schemas=(doc.components||{}).schemas||{};
  const show=s=>{if(!s)return '';if(s.$ref){const n=s.$ref.split('/').pop();return JSON.stringify({[n]:schemas[n]},null,2)}return JSON.stringify(s,null,2)};
  for(const [path,item] of Object.entries(doc.paths)){for(const [method,op] of Object.entries(item)){
    const d=document.createElement('div');d.className='op';
    const h=document.createElement('div');
    const m=document.createElement('span');m.className='m '+method;m.textContent=method;
    const p=document.createElement('code');p.textContent=path;h.append(m,p);d.append(h);
    if(op.description||op.summary){const t=document.createElement('p');t.textContent=op.summary||op.description;d.append(t)}
    const body=op.requestBody&&op.requestBody.content&&op.requestBody.content['application/json'];
    if(body){const pre=document.createElement('pre');pre.textContent='Request: '+show(body.schema);d.append(pre)}
    const codes=Object.keys(op.responses||{}).join(', ');const r=document.createElement('p');r.textContent='Responses: '+codes;d.append(r);
    ops.append(d)}}
}).catch(e=>{document.getElementById('ops').textContent='Could not load /openapi.json: '+e});
</script></body></html>"#;
