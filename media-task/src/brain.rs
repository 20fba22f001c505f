//! The brain: what answers the caller. A language model with tools here; the
//! conversation-brain work adds prompts, scripted flows and Parley's own tools behind
//! the same trait.
//!
//! The brain streams its answer as it forms, so speech can start on the first
//! sentence; when the model calls tools, the brain runs them, feeds the results back
//! and goes on, and says which tools it used so the context and transcript keep them.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::llm::{ChatRequest, LanguageModel, LlmEvent, Message, ToolCall, ToolSpec};
use crate::vendor::VendorError;

/// What a brain streams back for one answer.
#[derive(Clone, Debug, PartialEq)]
pub enum BrainEvent {
    Text(String),
    /// A tool ran; `result` is what the model was given (an `error: …` text when the
    /// tool failed, so the model can say so).
    ToolUsed {
        call: ToolCall,
        result: String,
    },
    /// The brain ended the call: hang up once the answer has played.
    EndCall,
    Done,
    Failed(VendorError),
}

/// What a tool gives back: the text for the model, and whether the call should end
/// once the answer has played (`end_call`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolOutput {
    pub content: String,
    pub end_call: bool,
}

impl From<String> for ToolOutput {
    fn from(content: String) -> ToolOutput {
        ToolOutput {
            content,
            end_call: false,
        }
    }
}

/// Answers the caller. Dropping the receiver cancels the answer.
pub trait Brain: Send + Sync {
    fn answer(&self, context: Vec<Message>) -> mpsc::Receiver<BrainEvent>;
}

/// Tools the model may call. The conversation brain registers Parley's own (book an
/// appointment, hand over to a human, ...); the mechanism is here.
#[async_trait]
pub trait Tools: Send + Sync {
    fn specs(&self) -> Vec<ToolSpec>;
    /// Runs `call`; the result text goes back to the model. A failure is a result too
    /// (`error: …`), never a reason to drop the call.
    async fn call(&self, call: &ToolCall) -> ToolOutput;
}

/// No tools at all.
pub struct NoTools;

#[async_trait]
impl Tools for NoTools {
    fn specs(&self) -> Vec<ToolSpec> {
        Vec::new()
    }
    async fn call(&self, call: &ToolCall) -> ToolOutput {
        format!("error: there is no tool named {}", call.name).into()
    }
}

/// A language model that may call tools.
pub struct LlmBrain {
    pub llm: Arc<dyn LanguageModel>,
    pub tools: Arc<dyn Tools>,
    /// Rounds of tool calls one answer may take before it must speak.
    pub max_tool_rounds: usize,
}

impl LlmBrain {
    pub fn new(llm: Arc<dyn LanguageModel>, tools: Arc<dyn Tools>) -> LlmBrain {
        LlmBrain {
            llm,
            tools,
            max_tool_rounds: 4,
        }
    }
}

impl Brain for LlmBrain {
    fn answer(&self, context: Vec<Message>) -> mpsc::Receiver<BrainEvent> {
        let (tx, rx) = mpsc::channel(64);
        let llm = self.llm.clone();
        let tools = self.tools.clone();
        let rounds = self.max_tool_rounds;
        tokio::spawn(async move {
            let end = think(&*llm, &*tools, context, rounds, &tx).await;
            let _ = tx.send(end).await;
        });
        rx
    }
}

/// Runs the model (and its tools) until it has answered; the last event to send.
async fn think(
    llm: &dyn LanguageModel,
    tools: &dyn Tools,
    mut messages: Vec<Message>,
    rounds: usize,
    tx: &mpsc::Sender<BrainEvent>,
) -> BrainEvent {
    let specs = tools.specs();
    for round in 0..=rounds {
        // The last round offers no tools, so the model has to speak.
        let offered = if round < rounds {
            specs.clone()
        } else {
            vec![]
        };
        let request = ChatRequest {
            messages: messages.clone(),
            tools: offered,
        };
        let mut stream = match llm.stream(request).await {
            Ok(stream) => stream,
            Err(e) => return BrainEvent::Failed(e),
        };
        let mut said = String::new();
        let calls = loop {
            match stream.recv().await {
                Some(LlmEvent::Text(text)) => {
                    said.push_str(&text);
                    if tx.send(BrainEvent::Text(text)).await.is_err() {
                        // Cancelled: dropping the stream stops the request.
                        return BrainEvent::Done;
                    }
                }
                Some(LlmEvent::ToolCalls(calls)) => break calls,
                Some(LlmEvent::Done) => return BrainEvent::Done,
                Some(LlmEvent::Failed(e)) => return BrainEvent::Failed(e),
                None => {
                    return BrainEvent::Failed(VendorError::Closed { vendor: "llm" });
                }
            }
        };
        messages.push(Message::Assistant {
            content: said,
            tool_calls: calls.clone(),
        });
        for call in calls {
            let output = tools.call(&call).await;
            messages.push(Message::Tool {
                tool_call_id: call.id.clone(),
                content: output.content.clone(),
            });
            let used = BrainEvent::ToolUsed {
                call,
                result: output.content,
            };
            if tx.send(used).await.is_err() {
                return BrainEvent::Done;
            }
            // The model still gets its turn to say goodbye after ending the call.
            if output.end_call && tx.send(BrainEvent::EndCall).await.is_err() {
                return BrainEvent::Done;
            }
        }
    }
    BrainEvent::Failed(VendorError::Protocol {
        vendor: "llm",
        detail: "kept calling tools without answering".into(),
    })
}
