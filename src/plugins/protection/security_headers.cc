// `security_headers`: browser hardening headers on every response, proxied
// or local (docs/protection.md, "security_headers").
//
//   - security_headers: {}                                   # the defaults
//   - security_headers: {hsts: "max-age=600", frame_options: SAMEORIGIN,
//                        referrer_policy: false}             # false: not added
//
// The fields go to RequestState::response_headers from on_request: the engine
// writes those on local replies and appends them to the proxied response's
// edits (replacing the upstream's fields of the same name), so each is written
// exactly once either way. The plugin runs in the early stage so that replies
// of the plugins after it (auth 401, rate limit 429...) carry the fields too.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "plugins/protection/common.h"
#include "plugins/protection/protection.h"

namespace gatehouse::plugins::protection {
namespace {

struct Field {
  std::string_view key;  // in the config
  std::string_view name;
  std::string_view value;  // the default
};

constexpr Field kFields[] = {
    {"hsts", "Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
    {"content_type_options", "X-Content-Type-Options", "nosniff"},
    {"frame_options", "X-Frame-Options", "DENY"},
    {"referrer_policy", "Referrer-Policy", "no-referrer"},
};

class SecurityHeaders : public proxy::Plugin {
 public:
  explicit SecurityHeaders(std::vector<std::pair<std::string, std::string>> fields)
      : fields_(std::move(fields)) {}

  proxy::Stage stage() const override { return proxy::Stage::kEarly; }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply&) const override {
    auto& out = ctx.state->response_headers;
    out.insert(out.end(), fields_.begin(), fields_.end());
    return true;
  }

  // Runs last of the response phases (early stage, reverse order), before the
  // engine appends response_headers to `edits`: a field another plugin set or
  // removed explicitly (a route's `headers` plugin) is left to it, so that it
  // is not written twice.
  void on_response_headers(const proxy::RequestContext& ctx, int,
                           proxy::HeaderEdits& edits) const override {
    if (edits.empty()) return;
    auto& out = ctx.state->response_headers;
    for (const auto& [name, value] : fields_) {
      if (!edits.drops(name)) continue;
      std::erase_if(out, [&](const auto& h) { return http::iequals(h.first, name); });
    }
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

std::string bad_value(std::string_view key) {
  std::string out = "'";
  out.append(key).append("' must be a non-empty header value without control characters, or false");
  return out;
}

}  // namespace

std::unique_ptr<proxy::Plugin> create_security_headers(const YAML::Node& config, const PluginEnv&,
                                                       const Report& report) {
  if (!config.IsNull() && !config.IsMap()) {
    report(config, "'security_headers' needs a map (or {})");
    return nullptr;
  }
  bool ok = true;
  if (config.IsMap()) {
    ok = only_keys(config, {"hsts", "content_type_options", "frame_options", "referrer_policy"},
                   "security_headers", report);
  }
  std::vector<std::pair<std::string, std::string>> fields;
  for (const Field& f : kFields) {
    const std::string key(f.key);
    if (!config.IsMap() || !config[key].IsDefined()) {
      fields.emplace_back(f.name, f.value);
      continue;
    }
    const YAML::Node v = config[key];
    if (!v.IsScalar()) {
      report(v, bad_value(f.key));
      ok = false;
      continue;
    }
    const std::string& text = v.Scalar();
    if (text == "false") continue;  // dropped
    if (text == "true") {
      fields.emplace_back(f.name, f.value);
      continue;
    }
    if (text.empty() || !http::is_field_value(text)) {
      report(v, bad_value(f.key));
      ok = false;
      continue;
    }
    fields.emplace_back(f.name, text);
  }
  if (!ok) return nullptr;
  return std::make_unique<SecurityHeaders>(std::move(fields));
}

}  // namespace gatehouse::plugins::protection
