//! A tonic gRPC server for the gRPC tests: the Greeter service of
//! examples/proto/hello.proto, its messages written by hand with prost's
//! derive (no protoc, no generated code), counting every call it gets.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::server::{Grpc, NamedService, ServerStreamingService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub count: i32,
    #[prost(string, repeated, tag = "3")]
    pub tags: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloReply {
    #[prost(string, tag = "1")]
    pub message: String,
    #[prost(int32, tag = "2")]
    pub index: i32,
}

/// Calls per method name, as the server saw them.
#[derive(Clone, Default)]
pub struct Counts(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counts {
    fn add(&self, method: &str) {
        *self.0.lock().unwrap().entry(method.into()).or_default() += 1;
    }

    pub fn get(&self, method: &str) -> u64 {
        self.0.lock().unwrap().get(method).copied().unwrap_or(0)
    }
}

#[derive(Clone)]
struct Greeter(Counts);

impl NamedService for Greeter {
    const NAME: &'static str = "hello.Greeter";
}

/// One unary method of the Greeter.
struct Unary(Greeter, &'static str);

impl UnaryService<HelloRequest> for Unary {
    type Response = HelloReply;
    type Future = BoxFuture<Response<HelloReply>, Status>;

    fn call(&mut self, request: Request<HelloRequest>) -> Self::Future {
        let (counts, method) = (self.0.0.clone(), self.1);
        Box::pin(async move {
            counts.add(method);
            let echo = request
                .metadata()
                .get("x-echo")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let req = request.into_inner();
            let reply = |message: String| HelloReply { message, index: 0 };
            match method {
                "SayHello" => Ok(Response::new(reply(format!("hello {}", req.name)))),
                "EchoMetadata" => {
                    let mut r = Response::new(reply(echo));
                    r.metadata_mut().insert("x-answer", "42".parse().unwrap());
                    Ok(r)
                }
                "Slow" => {
                    tokio::time::sleep(Duration::from_millis(req.count as u64)).await;
                    Ok(Response::new(reply("late".into())))
                }
                _ => Err(Status::not_found(format!("no such user {}", req.name))),
            }
        })
    }
}

struct Streaming(Greeter);

type Replies = Pin<Box<dyn futures_util::Stream<Item = Result<HelloReply, Status>> + Send>>;

impl ServerStreamingService<HelloRequest> for Streaming {
    type Response = HelloReply;
    type ResponseStream = Replies;
    type Future = BoxFuture<Response<Replies>, Status>;

    fn call(&mut self, request: Request<HelloRequest>) -> Self::Future {
        let counts = self.0.0.clone();
        Box::pin(async move {
            counts.add("StreamHellos");
            let req = request.into_inner();
            let replies: Vec<Result<HelloReply, Status>> = (1..=req.count)
                .map(|i| {
                    Ok(HelloReply {
                        message: format!("hello {} #{i}", req.name),
                        index: i,
                    })
                })
                .collect();
            let stream: Replies = Box::pin(futures_util::stream::iter(replies));
            Ok(Response::new(stream))
        })
    }
}

impl<B> Service<http::Request<B>> for Greeter
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let me = self.clone();
        let method = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        Box::pin(async move {
            let mut grpc = Grpc::new(ProstCodec::<HelloReply, HelloRequest>::default());
            Ok(match method.as_str() {
                "StreamHellos" => grpc.server_streaming(Streaming(me), req).await,
                "SayHello" | "EchoMetadata" | "Slow" | "Lookup" => {
                    let name: &'static str = match method.as_str() {
                        "SayHello" => "SayHello",
                        "EchoMetadata" => "EchoMetadata",
                        "Slow" => "Slow",
                        _ => "Lookup",
                    };
                    grpc.unary(Unary(me, name), req).await
                }
                _ => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

/// A Greeter server on a loopback port, for the life of the test.
pub struct Server {
    pub url: String,
    pub counts: Counts,
    /// Kept: dropping it stops the server.
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(false)
    }

    /// The same over TLS (ALPN h2) with a self-signed certificate for
    /// `localhost`: clients need `--insecure`.
    pub fn start_tls() -> Server {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let counts = Counts::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let mut builder = tonic::transport::Server::builder();
        let url = if tls {
            let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            let identity = tonic::transport::Identity::from_pem(
                key.cert.pem(),
                key.signing_key.serialize_pem(),
            );
            let config = tonic::transport::ServerTlsConfig::new().identity(identity);
            builder = builder.tls_config(config).unwrap();
            format!("https://localhost:{port}")
        } else {
            format!("http://127.0.0.1:{port}")
        };
        let router = builder.add_service(Greeter(counts.clone()));
        runtime.spawn(router.serve_with_incoming(incoming));
        Server {
            url,
            counts,
            _runtime: runtime,
        }
    }

    /// Waits until the server has counted `n` calls of `method` (its
    /// handlers may still be starting when swarmer exits); the count then.
    pub fn wait_count(&self, method: &str, n: u64) -> u64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.counts.get(method) < n && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.counts.get(method)
    }
}
