// `key_auth`: an API key in a header (default X-API-Key) or a query
// parameter (default api_key), looked up by its SHA-256 in the consumers.
#include "plugins/auth/authenticator.h"

namespace gatehouse::plugins::auth {
namespace {

// The raw (still percent-encoded) value of query parameter `name`; nullopt
// when absent. Keys are printable ASCII, so no decoding is needed to compare
// the common case; an encoded key is decoded.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      char c = raw[i];
      if (c == '%') {
        if (i + 2 >= raw.size()) return std::string();  // malformed: never matches a key
        auto hex = [](char h) {
          return h >= '0' && h <= '9'   ? h - '0'
                 : h >= 'a' && h <= 'f' ? h - 'a' + 10
                 : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                        : -1;
        };
        int hi = hex(raw[i + 1]), lo = hex(raw[i + 2]);
        if (hi < 0 || lo < 0) return std::string();  // malformed: never matches a key
        out.push_back(static_cast<char>(hi << 4 | lo));
        i += 2;
      } else {
        out.push_back(c == '+' ? ' ' : c);
      }
    }
    return out;
  }
  return std::nullopt;
}

class KeyAuth : public Authenticator {
 public:
  KeyAuth(std::string header, std::string query, bool hide, const PluginEnv& env)
      : header_(std::move(header)),
        query_(std::move(query)),
        hide_(hide),
        consumers_(env.consumers) {}

  Presence presented(const proxy::RequestContext& ctx) const override {
    if (!header_.empty() && !find_header(*ctx.head, header_).empty()) return Presence::kStrong;
    if (!query_.empty() && ctx.head->has_query && query_param(ctx.head->query, query_))
      return Presence::kStrong;
    return Presence::kNone;
  }

  const std::string& challenge() const override { return challenge_; }

  void hide_credential(const proxy::RequestContext& ctx) const override {
    if (hide_ && !query_.empty() && ctx.head->has_query) ctx.state->hidden_query_param = query_;
  }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const override {
    hide_credential(ctx);
    int count = 0;
    std::string_view key;
    std::optional<std::string> from_query;
    if (!header_.empty()) key = find_header(*ctx.head, header_, &count);
    if (count == 0 && !query_.empty() && ctx.head->has_query) {
      from_query = query_param(ctx.head->query, query_);
      if (from_query) key = *from_query;
    }
    const gatehouse::auth::Consumer* consumer =
        count > 1 || key.empty() ? nullptr : consumers_->by_api_key(key);
    if (consumer == nullptr) {
      refuse(reply, 401, "invalid credentials", challenge_);
      ctx.state->log_detail = "key_auth: unknown api key";
      return false;
    }
    identify_consumer(ctx.state->identity, consumer);
    return true;
  }

  void on_upstream_request(const proxy::RequestContext&, proxy::HeaderEdits& edits) const override {
    if (hide_ && !header_.empty()) edits.remove.push_back(header_);
  }

 private:
  std::string header_;
  std::string query_;
  bool hide_;
  const gatehouse::auth::ConsumerTable* consumers_;
  std::string challenge_ = "APIKey realm=\"gatehouse\"";
};

}  // namespace

std::unique_ptr<proxy::Plugin> create_key_auth(const YAML::Node& config, const PluginEnv& env,
                                               const Report& report) {
  std::string header = "X-API-Key";
  std::string query = "api_key";
  bool hide = true;
  const gatehouse::auth::Consumer* anonymous = nullptr;
  bool ok = true;
  if (!config.IsNull()) {
    if (!config.IsMap()) {
      report(config, "'key_auth' needs a map (or {})");
      return nullptr;
    }
    ok =
        only_keys(config, {"header", "query", "anonymous", "hide_credentials"}, "key_auth", report);
    for (const auto& kv : config) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (key == "header") {
        // `header: ""` turns header lookup off (query only).
        if (!v.IsScalar() || (!v.Scalar().empty() && !http::is_token(v.Scalar()))) {
          report(v, "'header' must be a header name");
          ok = false;
        } else {
          header = v.Scalar();
        }
      } else if (key == "query") {
        if (!v.IsScalar()) {
          report(v, "'query' must be a query parameter name");
          ok = false;
        } else {
          query = v.Scalar();
        }
      } else if (key == "anonymous") {
        ok = read_anonymous(v, env, report, anonymous) && ok;
      } else if (key == "hide_credentials") {
        auto b = read_bool(v, "'hide_credentials'", report);
        if (b) hide = *b;
        ok = ok && b.has_value();
      }
    }
    if (ok && header.empty() && query.empty()) {
      report(config, "'key_auth' needs a 'header' or a 'query' to read the key from");
      ok = false;
    }
  }
  if (!ok) return nullptr;
  auto p = std::make_unique<KeyAuth>(header, query, hide, env);
  p->set_anonymous(anonymous);
  return p;
}

}  // namespace gatehouse::plugins::auth
