//! gRPC server reflection, as grpcurl uses it: over real gRPC, the service
//! lists its services and describes them (and what they import) without
//! the caller holding any .proto file.

use identity_lifecycle_tests::*;
use prost::Message;
use prost_types::FileDescriptorProto;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

/// One request on the reflection stream, and its one answer.
async fn ask(channel: &Channel, request: MessageRequest) -> MessageResponse {
    try_ask(channel, request)
        .await
        .unwrap_or_else(|status| panic!("reflection answer: {status:?}"))
}

async fn try_ask(
    channel: &Channel,
    request: MessageRequest,
) -> Result<MessageResponse, tonic::Status> {
    let mut client = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await?
        .into_inner();
    let answer: Option<ServerReflectionResponse> = answers.message().await?;
    Ok(answer
        .and_then(|answer| answer.message_response)
        .expect("an answer with a message"))
}

/// The files of a file-descriptor answer, decoded.
fn files(answer: MessageResponse) -> Vec<FileDescriptorProto> {
    let MessageResponse::FileDescriptorResponse(files) = answer else {
        panic!("not a file descriptor answer: {answer:?}")
    };
    files
        .file_descriptor_proto
        .iter()
        .map(|bytes| FileDescriptorProto::decode(bytes.as_slice()).expect("a descriptor"))
        .collect()
}

#[tokio::test]
async fn reflection_lists_and_describes_every_service() {
    let stack = Stack::start().await;
    let channel = Channel::from_shared(stack.grpc_url.clone())
        .expect("gRPC url")
        .connect_lazy();

    let MessageResponse::ListServicesResponse(list) =
        ask(&channel, MessageRequest::ListServices(String::new())).await
    else {
        panic!("not a service list")
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "identity.v1.AuthService",
            "identity.v1.EventService",
            "identity.v1.GroupService",
            "identity.v1.TenantService",
            "identity.v1.TokenService",
            "identity.v1.UserService",
        ]
    );

    // `grpcurl describe identity.v1.UserService`: the file that declares it,
    // with its methods, and the well-known files it imports.
    let described = files(
        ask(
            &channel,
            MessageRequest::FileContainingSymbol("identity.v1.UserService".into()),
        )
        .await,
    );
    let identity = described
        .iter()
        .find(|file| file.package() == "identity.v1")
        .expect("the identity.v1 file");
    let users = identity
        .service
        .iter()
        .find(|service| service.name() == "UserService")
        .expect("UserService in its file");
    let methods: Vec<&str> = users.method.iter().map(|m| m.name()).collect();
    assert!(methods.contains(&"CreateUser"), "{methods:?}");
    for import in &identity.dependency {
        let imported = files(ask(&channel, MessageRequest::FileByFilename(import.clone())).await);
        assert!(
            imported.iter().any(|file| file.name() == import),
            "{import} is served"
        );
    }

    // An unknown symbol is NOT_FOUND.
    let unknown = try_ask(
        &channel,
        MessageRequest::FileContainingSymbol("identity.v1.NoSuchService".into()),
    )
    .await;
    assert_eq!(
        unknown.err().map(|status| status.code()),
        Some(tonic::Code::NotFound)
    );
}
