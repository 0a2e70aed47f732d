-- A server that HAProxy 2.6 finds through DNS starts UP: leaving the
-- resolution maintenance sets its check health to `rise` ("start OK but check
-- immediately"), and a slot that DNS gives a new address keeps the state it
-- had. Either way a container that listens but is not ready gets requests
-- until its first check fails, and a request that is not safe to repeat is
-- not retried elsewhere. (`init-state down`, which says otherwise, came with
-- HAProxy 3.1.) So whenever a server of the upstream backend comes out of
-- maintenance or changes its address, this forces its check state DOWN: from
-- there `rise` passing checks of the readiness route are needed before it
-- gets a request.
--
-- It runs before the load balancer picks a server for every request (the
-- http-request action) and every 50 ms besides (the task), for what is
-- chosen without an http-request rule in between: a retry or a redispatch.
-- HAProxy runs with one thread, so nothing changes between the action and
-- the choice.

local BACKEND = "upstream"
local PERIOD_MS = 50
local seen = {} -- server name -> its address when it was last forced down, or "maint"

local function gate()
    local backend = core.backends[BACKEND]
    if backend == nil then
        return
    end
    for name, server in pairs(backend.servers) do
        local status = server:get_stats()["status"] or ""
        local now
        if string.sub(status, 1, 5) == "MAINT" then
            now = "maint"
        else
            now = server:get_addr()
        end
        if seen[name] ~= now then
            seen[name] = now
            if now ~= "maint" then
                server:check_force_down()
                core.Info(string.format("readiness gate: %s/%s at %s is DOWN until its checks pass", BACKEND, name, now))
            end
        end
    end
end

core.register_task(function()
    while true do
        gate()
        core.msleep(PERIOD_MS)
    end
end)

core.register_action("readiness_gate", { "http-req" }, function(txn)
    gate()
end, 0)
