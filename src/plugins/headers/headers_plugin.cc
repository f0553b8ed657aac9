#include "plugins/headers/headers_plugin.h"

#include "http/http1_parser.h"

namespace gatehouse::plugins::headers {
namespace {

class HeadersPlugin : public proxy::Plugin {
 public:
  HeadersPlugin(proxy::HeaderEdits request, proxy::HeaderEdits response)
      : request_(std::move(request)), response_(std::move(response)) {}

  proxy::Stage stage() const override { return proxy::Stage::kTransform; }

  void on_upstream_request(const proxy::RequestContext&, proxy::HeaderEdits& edits) const override {
    append(request_, edits);
  }
  void on_response_headers(const proxy::RequestContext&, int,
                           proxy::HeaderEdits& edits) const override {
    append(response_, edits);
  }

 private:
  static void append(const proxy::HeaderEdits& from, proxy::HeaderEdits& to) {
    to.set.insert(to.set.end(), from.set.begin(), from.set.end());
    to.remove.insert(to.remove.end(), from.remove.begin(), from.remove.end());
  }
  proxy::HeaderEdits request_;
  proxy::HeaderEdits response_;
};

// A header name the engine owns: letting config set it would break framing
// or request identity.
bool reserved(const std::string& name) {
  for (std::string_view r : {"content-length", "transfer-encoding", "connection", "host",
                             "x-request-id", "upgrade", "te", "trailer", "keep-alive"}) {
    if (http::iequals(name, r)) return true;
  }
  return false;
}

bool load_edits(const YAML::Node& node, const Report& report, proxy::HeaderEdits& out) {
  bool ok = true;
  if (!node.IsMap()) {
    report(node, "'request' and 'response' must be maps with 'set' and/or 'remove'");
    return false;
  }
  for (const auto& kv : node) {
    std::string key = kv.first.Scalar();
    if (key == "set") {
      if (!kv.second.IsMap()) {
        report(kv.second, "'set' must be a map of header name to value");
        ok = false;
        continue;
      }
      for (const auto& h : kv.second) {
        std::string name = h.first.Scalar();
        if (!http::is_token(name) || reserved(name)) {
          report(h.first, "cannot set header '" + name + "'");
          ok = false;
        } else if (!h.second.IsScalar() || !http::is_field_value(h.second.Scalar())) {
          report(h.second, "header '" + name + "' needs a value without control characters");
          ok = false;
        } else {
          out.set.emplace_back(name, h.second.Scalar());
        }
      }
    } else if (key == "remove") {
      if (!kv.second.IsSequence()) {
        report(kv.second, "'remove' must be a list of header names");
        ok = false;
        continue;
      }
      for (const auto& h : kv.second) {
        std::string name = h.IsScalar() ? h.Scalar() : std::string();
        if (!http::is_token(name) || reserved(name)) {
          report(h, "cannot remove header '" + name + "'");
          ok = false;
        } else {
          out.remove.push_back(name);
        }
      }
    } else {
      report(kv.first, "unknown key '" + key + "' in headers plugin");
      ok = false;
    }
  }
  return ok;
}

}  // namespace

std::unique_ptr<proxy::Plugin> create(const YAML::Node& config, const PluginEnv&,
                                      const Report& report) {
  if (!config.IsMap()) {
    report(config, "'headers' needs a map with 'request' and/or 'response'");
    return nullptr;
  }
  proxy::HeaderEdits request, response;
  bool ok = true;
  for (const auto& kv : config) {
    std::string key = kv.first.Scalar();
    if (key == "request") {
      ok = load_edits(kv.second, report, request) && ok;
    } else if (key == "response") {
      ok = load_edits(kv.second, report, response) && ok;
    } else {
      report(kv.first, "unknown key '" + key + "' in headers plugin");
      ok = false;
    }
  }
  if (!ok) return nullptr;
  return std::make_unique<HeadersPlugin>(std::move(request), std::move(response));
}

}  // namespace gatehouse::plugins::headers
