//! LoRA adapters: `GET /v1/models`, `POST /v1/load_lora_adapter`,
//! `POST /v1/unload_lora_adapter`, with vLLM's answers and messages.

use actix_web::{HttpResponse, web};

use crate::{
    MockError, State,
    openai::{LoraRequest, ModelCard, ModelList},
    server::Lora,
};

/// `GET /v1/models`: served names (no parent), then adapters (parent = first served name).
pub async fn models(state: web::Data<State>) -> HttpResponse {
    let created = state.started();
    let card = |id: &str, root: &str, parent: Option<&str>| ModelCard {
        id: id.to_owned(),
        object: "model".to_owned(),
        created,
        owned_by: state.config().engine.name().to_owned(),
        root: root.to_owned(),
        parent: parent.map(str::to_owned),
    };
    let mut data: Vec<ModelCard> = state
        .config()
        .served_model_names
        .iter()
        .map(|name| card(name, name, None))
        .collect();
    let base = state.base_model();
    data.extend(
        state
            .loras()
            .iter()
            .map(|lora| card(&lora.name, &lora.path, Some(base))),
    );
    HttpResponse::Ok().json(ModelList {
        object: "list".to_owned(),
        data,
    })
}

/// `POST /v1/load_lora_adapter` `{"lora_name","lora_path"}`: 200 text on success, 400 when
/// a field is missing or the adapter is already loaded.
pub async fn load(state: web::Data<State>, body: web::Bytes) -> Result<HttpResponse, MockError> {
    let request = parse(&body)?;
    let (Some(name), Some(path)) = (request.lora_name, request.lora_path) else {
        return Err(MockError::BadRequest(
            "Both 'lora_name' and 'lora_path' must be provided.".to_owned(),
        ));
    };
    let mut loras = state.loras_mut();
    if loras.iter().any(|l| l.name == name) {
        return Err(MockError::LoraAlreadyLoaded(name));
    }
    let message = format!("Success: LoRA adapter '{name}' added successfully.");
    tracing::info!(lora = %name, %path, "loaded LoRA adapter");
    loras.push(Lora { name, path });
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(message))
}

/// `POST /v1/unload_lora_adapter` `{"lora_name"}`: 200 text on success, 404 when not loaded.
pub async fn unload(state: web::Data<State>, body: web::Bytes) -> Result<HttpResponse, MockError> {
    let request = parse(&body)?;
    let Some(name) = request.lora_name else {
        return Err(MockError::BadRequest(
            "'lora_name' needs to be provided to unload a LoRA adapter.".to_owned(),
        ));
    };
    let mut loras = state.loras_mut();
    let Some(index) = loras.iter().position(|l| l.name == name) else {
        return Err(MockError::LoraNotFound(name));
    };
    loras.remove(index);
    tracing::info!(lora = %name, "unloaded LoRA adapter");
    let message = format!("Success: LoRA adapter '{name}' removed successfully.");
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(message))
}

fn parse(body: &[u8]) -> Result<LoraRequest, MockError> {
    serde_json::from_slice(body)
        .map_err(|e| MockError::BadRequest(format!("invalid JSON body: {e}")))
}
