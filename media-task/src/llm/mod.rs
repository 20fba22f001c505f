//! Language models that stream their answer and may call tools.
//!
//! - [`openai`]: any OpenAI-compatible chat-completions endpoint (OpenAI, Groq, a
//!   local llama.cpp, vLLM or Ollama server), streamed over server-sent events.

pub mod openai;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::vendor::VendorError;

/// One message of the conversation, as chat-completions APIs take it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        content: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        tool_call_id: String,
        content: String,
    },
}

/// A tool the model may call: its name, what it does, and its arguments' JSON Schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A call the model asked for; `arguments` is the JSON text the model wrote (it may not
/// parse: the tool says so in its result).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
}

/// What the model streams back.
#[derive(Clone, Debug, PartialEq)]
pub enum LlmEvent {
    /// More of the answer's text.
    Text(String),
    /// The model wants these tools called (assembled whole from the stream's pieces);
    /// it is waiting for their results.
    ToolCalls(Vec<ToolCall>),
    /// The answer is complete.
    Done,
    /// The stream failed; nothing more will come.
    Failed(VendorError),
}

#[async_trait]
pub trait LanguageModel: Send + Sync {
    /// Starts an answer. Fails when the vendor cannot be reached or refuses before it
    /// starts streaming. Dropping the receiver cancels the request (barge-in).
    async fn stream(&self, request: ChatRequest) -> Result<mpsc::Receiver<LlmEvent>, VendorError>;
}
