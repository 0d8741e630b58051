//! The gRPC tests' Greeter server (tests/grpc_support) as a program, the
//! peer of bench/grpc.sh: prints its URL, then serves until killed.

#[allow(dead_code)]
#[path = "../tests/grpc_support/mod.rs"]
mod grpc_support;

fn main() {
    let server = grpc_support::Server::start();
    println!("{}", server.url);
    loop {
        std::thread::park();
    }
}
