//! The OpenAPI 3.1 document, generated from the handlers and types.

use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::ops::{analytics, billing, jobs, stripe};
use super::{conversations, media, messages, numbers, problem, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "Parley API", description = "Multi-tenant WhatsApp Business messaging backend."),
    paths(
        super::health,
        webhooks::verify,
        webhooks::receive,
        numbers::register,
        numbers::list,
        numbers::update,
        numbers::metrics,
        messages::send,
        messages::list,
        messages::search,
        messages::get,
        messages::media,
        media::upload,
        conversations::list,
        conversations::get,
        jobs::list,
        jobs::get,
        jobs::export,
        analytics::summary,
        billing::usage,
        billing::invoices,
        billing::invoice,
        billing::plan,
        stripe::receive,
    ),
    components(schemas(problem::Problem)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi().merge_from(super::auth::IdentityApi::openapi());
    doc.merge(super::handling::HandlingApi::openapi());
    doc.merge(super::contacts::ContactsApi::openapi());
    doc.merge(super::templates::TemplatesApi::openapi());
    doc
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn serve() -> impl IntoResponse {
    axum::Json(document())
}
