// A small client of gymserve.serving.v1.PolicyService: spaces of a policy, single Act calls and a
// StreamAct control loop. Observations are FLOAT32 tensors; actions come back as INT64 (discrete
// spaces) or FLOAT32 / FLOAT64 (boxes), all as little-endian, row-major bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "gymserve/serving/v1/policy_service.grpc.pb.h"

namespace gymserve {

namespace v1 = ::gymserve::serving::v1;

// A failed RPC, or an answer this client cannot read.
class ClientError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One action: an integer for a discrete space, the values of a box otherwise.
struct Action {
  std::vector<int64_t> integers;  // INT64 actions
  std::vector<double> values;     // FLOAT32 / FLOAT64 actions
  v1::DataType dtype = v1::DATA_TYPE_UNSPECIFIED;
};

// The policy version that answered GetPolicy, and its spaces.
struct PolicyDescription {
  std::string name;
  int64_t version = 0;
  v1::Space observation_space;
  v1::Space action_space;

  // The number of floats one observation holds (the product of the box's shape).
  size_t observation_size() const;
  // "Box[4]", "Discrete(2)", ...
  static std::string describe(const v1::Space& space);
};

// A StreamAct call: one observation in, one action out, in order, until `finish`.
class ActionStream {
 public:
  ActionStream(v1::PolicyService::Stub& stub, PolicyDescription policy);
  ~ActionStream();

  // The action for the next step; `episode_start` makes the server start from the initial state.
  Action step(const std::vector<float>& observation, bool episode_start);
  // Closes the stream and reports the server's final status (throws ClientError when not OK).
  void finish();

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StreamActRequest, v1::StreamActResponse>> stream_;
  PolicyDescription policy_;
  bool finished_ = false;
};

class PolicyClient {
 public:
  // `deadline_ms` bounds every unary call (GetPolicy, Act); streams run until they are finished.
  PolicyClient(const std::string& address, int deadline_ms = 10000);

  PolicyDescription describe(const std::string& policy);
  Action act(const PolicyDescription& policy, const std::vector<float>& observation);
  std::unique_ptr<ActionStream> stream(const PolicyDescription& policy);

 private:
  std::unique_ptr<v1::PolicyService::Stub> stub_;
  int deadline_ms_;
};

// The FLOAT32 tensor of one observation shaped `shape`.
v1::Tensor float32_tensor(const std::vector<float>& values, const std::vector<int64_t>& shape);
// The action a response tensor holds (one observation's: shape [] or [k]).
Action read_action(const v1::Tensor& tensor);

}  // namespace gymserve
