#include "reactor/LoopHandleAnchor.h"

#include <utility>

namespace protohost::host {

bool LoopHandleAnchor::post(Call fn) {
  if (!alive()) return false;
  // Members go in reverse order: the plugin's call before the reference that keeps its code mapped.
  struct Pending {
    std::shared_ptr<const void> code;
    Call call;
  };
  auto pending = std::make_shared<Pending>(Pending{code_.lock(), std::move(fn)});
  if (!pending->code) return false;  // the plugin is being unloaded: the target is gone
  return gate_->post([self = shared_from_this(), pending] {
    if (self->alive()) self->deliver_(pending->call);
    pending->call = nullptr;  // the call's captures go here, on the loop, before the code reference
  });
}

}  // namespace protohost::host
