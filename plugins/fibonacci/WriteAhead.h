#pragma once
// Runs Sequence::writeAhead() on a host worker thread, and aheadFinished()
// once that work ran or was dropped (queue full, host stopping, owner gone),
// so that the sequence may ask again. Used by connections (draw's writeAhead)
// and by the factory's retry timer (wantRetry).

#include <memory>

#include "Sequence.h"
#include "protohost/Reactor.h"

namespace protohost::plugins::fibonacci {

/// Thread: @p reactor's thread. The done is empty: nobody waits for a write ahead.
WorkStatus deferWriteAhead(Reactor& reactor, const std::shared_ptr<Sequence>& sequence);

}  // namespace protohost::plugins::fibonacci
