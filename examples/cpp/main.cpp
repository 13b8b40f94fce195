// Reads observations from stdin, one per line as space-separated floats, and prints the served
// policy's greedy action for each, one per line: an integer for a discrete action space, the
// space-separated values for a box.
//
//   gymserve_client ADDRESS POLICY [--stream] [--deadline-ms MS] < observations.txt
//
// By default every observation is one Act call. With --stream all of them travel over one StreamAct
// call, as a robot's control loop would send them; there an empty line ends an episode, so the
// next observation starts a new one from the policy's initial state.
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "policy_client.h"

namespace {

constexpr const char* kUsage =
    "usage: gymserve_client ADDRESS POLICY [--stream] [--deadline-ms MS] < observations\n"
    "  ADDRESS   host:port of a gymserve server, e.g. 127.0.0.1:8500\n"
    "  POLICY    the served policy's name, e.g. cartpole\n"
    "  --stream  send every observation over one StreamAct call (default: one Act call each)\n"
    "  --deadline-ms MS  deadline of each GetPolicy and Act call (default 10000)\n";

struct Options {
  std::string address;
  std::string policy;
  bool stream = false;
  int deadline_ms = 10000;
};

bool parse_options(int argc, char** argv, Options& options) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    if (argument == "--stream") {
      options.stream = true;
    } else if (argument == "--deadline-ms" && i + 1 < argc) {
      std::string value = argv[++i];
      if (value.empty() || value.size() > 9 || value.find_first_not_of("0123456789") != std::string::npos) {
        return false;  // not a count of milliseconds that fits an int
      }
      options.deadline_ms = std::stoi(value);
    } else if (argument.rfind("--", 0) == 0) {
      return false;
    } else {
      positional.push_back(argument);
    }
  }
  if (positional.size() != 2) return false;
  options.address = positional[0];
  options.policy = positional[1];
  return true;
}

// The floats of one line; throws when it holds anything else or the wrong number of them.
std::vector<float> parse_observation(const std::string& line, size_t line_number, size_t size) {
  std::istringstream fields(line);
  std::vector<float> observation;
  std::string field;
  while (fields >> field) {
    size_t parsed = 0;
    float value = 0;
    try {
      value = std::stof(field, &parsed);
    } catch (const std::exception&) {
    }
    if (parsed == 0 || parsed != field.size()) {
      throw std::runtime_error("line " + std::to_string(line_number) + ": '" + field + "' is not a number");
    }
    observation.push_back(value);
  }
  if (observation.size() != size) {
    throw std::runtime_error("line " + std::to_string(line_number) + ": expected " + std::to_string(size) +
                             " numbers, got " + std::to_string(observation.size()));
  }
  return observation;
}

// Integers as they are; floats with enough digits to read back the same float32 / float64.
std::string format_action(const gymserve::Action& action) {
  std::ostringstream text;
  if (action.dtype == gymserve::v1::DATA_TYPE_FLOAT32) {
    text.precision(std::numeric_limits<float>::max_digits10);
  } else {
    text.precision(std::numeric_limits<double>::max_digits10);
  }
  const char* separator = "";
  for (int64_t value : action.integers) text << separator << value, separator = " ";
  for (double value : action.values) text << separator << value, separator = " ";
  return text.str();
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_options(argc, argv, options)) {
    std::cerr << kUsage;
    return 2;
  }
  try {
    gymserve::PolicyClient client(options.address, options.deadline_ms);
    gymserve::PolicyDescription policy = client.describe(options.policy);
    std::cerr << policy.name << " version " << policy.version << ": observations "
              << gymserve::PolicyDescription::describe(policy.observation_space) << ", actions "
              << gymserve::PolicyDescription::describe(policy.action_space) << "\n";

    std::unique_ptr<gymserve::ActionStream> stream;
    if (options.stream) stream = client.stream(policy);
    bool episode_start = true;
    std::string line;
    for (size_t line_number = 1; std::getline(std::cin, line); ++line_number) {
      if (is_blank(line)) {
        episode_start = true;
        continue;
      }
      std::vector<float> observation = parse_observation(line, line_number, policy.observation_size());
      gymserve::Action action = stream ? stream->step(observation, episode_start) : client.act(policy, observation);
      episode_start = false;
      std::cout << format_action(action) << "\n";
    }
    if (stream) stream->finish();
  } catch (const std::exception& error) {
    std::cerr << "gymserve_client: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
