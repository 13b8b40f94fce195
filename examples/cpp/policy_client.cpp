#include "policy_client.h"

#include <chrono>
#include <cstring>
#include <sstream>

namespace gymserve {

namespace {

// The wire format is little-endian whatever the host is, so bytes are assembled by hand.
uint64_t read_little_endian(const std::string& bytes, size_t offset, size_t width) {
  uint64_t word = 0;
  for (size_t i = 0; i < width; ++i) {
    word |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return word;
}

void append_little_endian(std::string& bytes, uint64_t word, size_t width) {
  for (size_t i = 0; i < width; ++i) bytes.push_back(static_cast<char>((word >> (8 * i)) & 0xff));
}

std::string status_text(const std::string& rpc, const grpc::Status& status) {
  std::ostringstream text;
  text << rpc << " failed with status " << status.error_code() << ": " << status.error_message();
  return text.str();
}

std::vector<int64_t> box_shape(const v1::Space& space) {
  if (!space.has_box()) throw ClientError("this client sends Box observations only, the policy takes " +
                                          PolicyDescription::describe(space));
  return {space.box().shape().begin(), space.box().shape().end()};
}

// A greedy request for one observation of the policy version `policy` describes.
v1::ActRequest greedy_request(const PolicyDescription& policy, const std::vector<float>& observation) {
  v1::ActRequest request;
  request.set_policy_name(policy.name);
  request.set_policy_version(policy.version);
  request.set_mode(v1::ACTION_MODE_GREEDY);
  *request.mutable_observations() = float32_tensor(observation, box_shape(policy.observation_space));
  return request;
}

void set_deadline(grpc::ClientContext& context, int deadline_ms) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
}

}  // namespace

size_t PolicyDescription::observation_size() const {
  size_t size = 1;
  for (int64_t dimension : box_shape(observation_space)) size *= static_cast<size_t>(dimension);
  return size;
}

std::string PolicyDescription::describe(const v1::Space& space) {
  std::ostringstream text;
  if (space.has_discrete()) {
    text << "Discrete(" << space.discrete().n();
    if (space.discrete().start() != 0) text << ", start=" << space.discrete().start();
    text << ")";
  } else if (space.has_box()) {
    text << "Box[";
    for (int i = 0; i < space.box().shape_size(); ++i) text << (i ? ", " : "") << space.box().shape(i);
    text << "]";
  } else {
    text << "an unknown space";
  }
  return text.str();
}

v1::Tensor float32_tensor(const std::vector<float>& values, const std::vector<int64_t>& shape) {
  v1::Tensor tensor;
  tensor.set_dtype(v1::DATA_TYPE_FLOAT32);
  for (int64_t dimension : shape) tensor.add_shape(dimension);
  std::string content;
  content.reserve(values.size() * sizeof(float));
  for (float value : values) {
    uint32_t word;
    std::memcpy(&word, &value, sizeof word);
    append_little_endian(content, word, sizeof word);
  }
  tensor.set_content(std::move(content));
  return tensor;
}

Action read_action(const v1::Tensor& tensor) {
  size_t count = 1;
  for (int64_t dimension : tensor.shape()) count *= static_cast<size_t>(dimension);
  size_t width = tensor.dtype() == v1::DATA_TYPE_FLOAT32 ? 4 : 8;
  if (tensor.dtype() == v1::DATA_TYPE_UNSPECIFIED || tensor.content().size() != count * width) {
    throw ClientError("the server answered an action tensor this client cannot read (dtype " +
                      v1::DataType_Name(tensor.dtype()) + ", " + std::to_string(tensor.content().size()) +
                      " bytes)");
  }
  Action action;
  action.dtype = tensor.dtype();
  for (size_t i = 0; i < count; ++i) {
    uint64_t word = read_little_endian(tensor.content(), i * width, width);
    if (tensor.dtype() == v1::DATA_TYPE_INT64) {
      action.integers.push_back(static_cast<int64_t>(word));
    } else if (tensor.dtype() == v1::DATA_TYPE_FLOAT32) {
      uint32_t narrow = static_cast<uint32_t>(word);
      float value;
      std::memcpy(&value, &narrow, sizeof value);
      action.values.push_back(value);
    } else {
      double value;
      std::memcpy(&value, &word, sizeof value);
      action.values.push_back(value);
    }
  }
  return action;
}

PolicyClient::PolicyClient(const std::string& address, int deadline_ms)
    : stub_(v1::PolicyService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))),
      deadline_ms_(deadline_ms) {}

PolicyDescription PolicyClient::describe(const std::string& policy) {
  v1::GetPolicyRequest request;
  request.set_policy_name(policy);
  v1::GetPolicyResponse response;
  grpc::ClientContext context;
  set_deadline(context, deadline_ms_);
  grpc::Status status = stub_->GetPolicy(&context, request, &response);
  if (!status.ok()) throw ClientError(status_text("GetPolicy", status));
  return {response.policy_name(), response.policy_version(), response.observation_space(),
          response.action_space()};
}

Action PolicyClient::act(const PolicyDescription& policy, const std::vector<float>& observation) {
  v1::ActRequest request = greedy_request(policy, observation);
  v1::ActResponse response;
  grpc::ClientContext context;
  set_deadline(context, deadline_ms_);
  grpc::Status status = stub_->Act(&context, request, &response);
  if (!status.ok()) throw ClientError(status_text("Act", status));
  return read_action(response.actions());
}

std::unique_ptr<ActionStream> PolicyClient::stream(const PolicyDescription& policy) {
  return std::make_unique<ActionStream>(*stub_, policy);
}

ActionStream::ActionStream(v1::PolicyService::Stub& stub, PolicyDescription policy)
    : stream_(stub.StreamAct(&context_)), policy_(std::move(policy)) {}

ActionStream::~ActionStream() {
  if (!finished_) context_.TryCancel();  // an abandoned stream must not keep the call open
}

Action ActionStream::step(const std::vector<float>& observation, bool episode_start) {
  v1::StreamActRequest request;
  request.set_episode_start(episode_start);
  *request.mutable_act() = greedy_request(policy_, observation);
  v1::StreamActResponse response;
  // A failed write or read means the server ended the stream; finish() says why.
  if (!stream_->Write(request) || !stream_->Read(&response)) {
    finish();
    throw ClientError("StreamAct ended before answering a step");
  }
  return read_action(response.act().actions());
}

void ActionStream::finish() {
  if (finished_) return;
  finished_ = true;
  stream_->WritesDone();
  grpc::Status status = stream_->Finish();
  if (!status.ok()) throw ClientError(status_text("StreamAct", status));
}

}  // namespace gymserve
