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
        osprey_types::error::ErrorBody,
        osprey_types::error::ErrorCode,
    ))
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi)).route("/docs", get(docs))
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
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
