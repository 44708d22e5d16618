-- cPTP dissector for Wireshark 4.x (Lua 5.2 or later).
--
-- cPTP is the course's peer-to-peer protocol; the wire format is docs/PROTOCOL.md
-- section 4. One message, big-endian:
--
--   word (4 bytes): V (3 bits, always 7) | type (8: 1 Welcome, 2 Redirect)
--                   | number of peers N (13) | sender ID length L (8)
--   sender ID (L bytes, ASCII), then N entries of IPv4 address (4) + port (2).
--
-- A message is exactly 4 + L + 6N bytes. The joining peer sends nothing: the server side
-- of a connection sends one message (a Welcome, after which the link stays open, or a
-- Redirect, after which it closes). Some course peers append zero bytes or "\n": shown as
-- trailing bytes, not as an error.
--
-- Load it with `tshark -X lua_script:cptp.lua` or copy it to
-- ~/.local/lib/wireshark/plugins/. It finds cPTP on any port by a strict heuristic, or on
-- the port set in the preference cptp.tcp.port.

local cptp = Proto("cptp", "cPTP (course Peer-to-Peer Transport Protocol)")

local HEADER_LEN = 4
local ENTRY_LEN = 6
local VERSION = 7
local TYPES = { [1] = "Welcome", [2] = "Redirect" }
-- At most this many peers are listed in the Info column; the tree has them all.
local INFO_PEERS = 8

local f = {
    version = ProtoField.uint32("cptp.version", "Version", base.DEC, nil, 0xE0000000,
        "Protocol version: always 7"),
    type = ProtoField.uint32("cptp.type", "Message type", base.DEC, TYPES, 0x1FE00000,
        "1 = Welcome (joined), 2 = Redirect (table full, try the listed peers)"),
    count = ProtoField.uint32("cptp.count", "Number of peers", base.DEC, nil, 0x001FFF00,
        "How many peer entries follow the sender ID"),
    id_length = ProtoField.uint32("cptp.id_length", "Sender ID length", base.DEC, nil,
        0x000000FF, "Length of the sender ID in bytes"),
    sender_id = ProtoField.string("cptp.sender_id", "Sender ID", base.ASCII),
    peer_ip = ProtoField.ipv4("cptp.peer.ip", "IP address"),
    peer_port = ProtoField.uint16("cptp.peer.port", "Port", base.DEC),
    trailing = ProtoField.bytes("cptp.trailing", "Trailing bytes", base.SPACE,
        "Bytes after a complete message (padding some peers send; receivers ignore them)"),
    data = ProtoField.bytes("cptp.data", "Undecoded bytes", base.SPACE),
}
cptp.fields = { f.version, f.type, f.count, f.id_length, f.sender_id, f.peer_ip,
    f.peer_port, f.trailing, f.data }

local e = {
    bad_version = ProtoExpert.new("cptp.bad_version", "Wrong protocol version",
        expert.group.MALFORMED, expert.severity.ERROR),
    unknown_type = ProtoExpert.new("cptp.unknown_type", "Unknown message type",
        expert.group.MALFORMED, expert.severity.ERROR),
    truncated = ProtoExpert.new("cptp.truncated", "Message cut short",
        expert.group.MALFORMED, expert.severity.ERROR),
    incomplete = ProtoExpert.new("cptp.incomplete", "Message continues beyond this segment",
        expert.group.REASSEMBLE, expert.severity.NOTE),
    junk = ProtoExpert.new("cptp.junk", "Bytes after the message that are not padding",
        expert.group.PROTOCOL, expert.severity.WARN),
    trailing = ProtoExpert.new("cptp.trailing_bytes", "Trailing bytes after the message",
        expert.group.PROTOCOL, expert.severity.NOTE),
    empty_id = ProtoExpert.new("cptp.empty_id", "Empty sender ID",
        expert.group.PROTOCOL, expert.severity.WARN),
}
cptp.experts = { e.bad_version, e.unknown_type, e.truncated, e.incomplete, e.trailing,
    e.junk, e.empty_id }

cptp.prefs["tcp.port"] = Pref.uint("TCP port", 0,
    "Decode this TCP port as cPTP (0 = none; cPTP is also found on any port by a heuristic)")

local tcp_seq = Field.new("tcp.seq")
local tcp_fin = Field.new("tcp.flags.fin")
local tcp_stream = Field.new("tcp.stream")

-- Messages still waiting for bytes, by TCP stream: filled on the first pass, read when
-- that stream's sender closes (see the postdissector at the end).
local pending = {}
-- FIN frames that closed a stream with a message incomplete: frame number -> details.
local cut_at_fin = {}
-- The frame in which each direction of a connection ("stream:port") completed its
-- message. A side sends one message at most; what it sends later is not a message
-- (a link carries none), and receivers ignore it (PROTOCOL 4.4).
local completed = {}

function cptp.init()
    pending, cut_at_fin, completed = {}, {}, {}
end


local function field_value(extractor)
    local fi = extractor()
    if fi then return fi.value end
    return nil
end

-- The four header fields from the 32-bit word (arithmetic: works in Lua 5.2 to 5.4).
local function split_word(word)
    return math.floor(word / 0x20000000),
        math.floor(word / 0x200000) % 0x100,
        math.floor(word / 0x100) % 0x2000,
        word % 0x100
end

-- Padding that course peers send after a message: zero bytes, "\n" or "\r".
-- No message starts with these (a message's first byte is 0xE0 or more, since V = 7).
local function is_padding(byte)
    return byte == 0x00 or byte == 0x0A or byte == 0x0D
end

local function plural(n, one, many)
    if n == 1 then return "1 " .. one end
    return n .. " " .. many
end

local function peer_list(tvb, first, count)
    local shown = {}
    for i = 0, math.min(count, INFO_PEERS) - 1 do
        local at = first + i * ENTRY_LEN
        shown[#shown + 1] = tostring(tvb(at, 4):ipv4()) .. ":" .. tvb(at + 4, 2):uint()
    end
    local text = table.concat(shown, ", ")
    if count > INFO_PEERS then text = text .. ", ..." end
    return text
end

-- Adds the four header fields of the word at `offset` to `tree`.
local function add_header(tree, tvb, offset)
    local word = tvb(offset, HEADER_LEN)
    tree:add(f.version, word)
    tree:add(f.type, word)
    tree:add(f.count, word)
    tree:add(f.id_length, word)
end

-- Adds the message at `offset` (at most `available` bytes of it present) to `tree`.
-- Returns the summary for the Info column.
local function add_message(tvb, tree, offset, available, kind, count, id_len, why_short)
    local total = HEADER_LEN + id_len + ENTRY_LEN * count
    local item = tree:add(cptp, tvb(offset, math.min(total, available)))
    add_header(item, tvb, offset)

    local id_have = math.max(0, math.min(id_len, available - HEADER_LEN))
    local sender = ""
    if id_len == 0 then
        item:add_proto_expert_info(e.empty_id, "Empty sender ID (IDs are 1 to 255 bytes)")
    elseif id_have > 0 then
        local range = tvb(offset + HEADER_LEN, id_have)
        item:add(f.sender_id, range)
        sender = range:string()
    end

    local first = offset + HEADER_LEN + id_len
    local entries = 0
    if available > HEADER_LEN + id_len then
        entries = math.min(count, math.floor((available - HEADER_LEN - id_len) / ENTRY_LEN))
    end
    if count > 0 then
        local label = "Peers: " .. plural(count, "entry", "entries")
        if entries < count then
            label = string.format("Peers: %d announced, %d present", count, entries)
        end
        local peers = item:add(cptp, tvb(first, math.max(entries * ENTRY_LEN, 0)), label)
        if entries == 0 then
            peers:set_len(0)
        end
        for i = 0, entries - 1 do
            local at = first + i * ENTRY_LEN
            local ip = tvb(at, 4)
            local port = tvb(at + 4, 2)
            local sub = peers:add(cptp, tvb(at, ENTRY_LEN),
                string.format("Peer %d: %s:%d", i + 1, tostring(ip:ipv4()), port:uint()))
            sub:add(f.peer_ip, ip)
            sub:add(f.peer_port, port)
        end
    end

    local name = TYPES[kind]
    local summary = name .. " from " .. sender .. ", "
    if count == 0 then
        summary = summary .. "no peers"
    else
        summary = summary .. plural(count, "peer", "peers") .. ": "
            .. peer_list(tvb, first, entries)
        if entries < count and entries <= INFO_PEERS then
            summary = summary .. (entries > 0 and ", ..." or "...")
        end
    end
    item:append_text(", " .. summary)

    if available < total then
        local text = string.format(
            "Message cut short: %s announced, %d of %d bytes present (%s)",
            plural(count, "peer", "peers"), available, total, why_short)
        if why_short == "continues in the next segment" then
            item:add_proto_expert_info(e.incomplete, text
                .. "; enable TCP's \"Allow subdissector to reassemble TCP streams\"")
        else
            item:add_proto_expert_info(e.truncated, text)
        end
        summary = summary .. " [cut short]"
    end
    return summary
end

-- The key of the direction `pinfo` belongs to, or nil outside TCP.
local function direction(pinfo, stream)
    return stream and (tostring(stream) .. ":" .. tostring(pinfo.src_port))
end

-- Shows `tvb(offset)` to the end as bytes after the message that are not padding.
local function add_junk(tree, tvb, offset)
    local len = tvb:len() - offset
    local item = tree:add(cptp, tvb(offset, len), "cPTP trailing bytes")
    item:add(f.trailing, tvb(offset, len))
    item:add_proto_expert_info(e.junk, string.format(
        "%s after the message that are neither padding nor a message (receivers ignore them)",
        plural(len, "byte", "bytes")))
    return "trailing " .. plural(len, "byte", "bytes") .. " (not padding)"
end

-- Dissects everything in `tvb`: messages, padding between or after them.
local function dissect(tvb, pinfo, tree)
    local len = tvb:len()
    if len == 0 then return 0 end
    pinfo.cols.protocol = "cPTP"
    local summaries = {}
    local offset = 0
    local stream = field_value(tcp_stream)
    local key = direction(pinfo, stream)
    -- This direction's message was complete before this frame, or earlier in it.
    local after_message = key ~= nil and completed[key] ~= nil and completed[key] < pinfo.number

    while offset < len do
        local byte = tvb(offset, 1):uint()
        local available = len - offset
        local valid_header = false
        if available >= HEADER_LEN then
            local version, kind = split_word(tvb(offset, HEADER_LEN):uint())
            valid_header = version == VERSION and TYPES[kind] ~= nil
        end
        if after_message and not is_padding(byte) and not valid_header then
            summaries[#summaries + 1] = add_junk(tree, tvb, offset)
            offset = len
            break
        elseif is_padding(byte) then
            local stop = offset
            while stop < len and is_padding(tvb(stop, 1):uint()) do stop = stop + 1 end
            local item = tree:add(cptp, tvb(offset, stop - offset), "cPTP trailing bytes")
            item:add(f.trailing, tvb(offset, stop - offset))
            item:add_proto_expert_info(e.trailing, string.format(
                "%s after the message (padding some course peers send; receivers ignore it)",
                plural(stop - offset, "byte", "bytes")))
            summaries[#summaries + 1] = "trailing " .. plural(stop - offset, "byte", "bytes")
            offset = stop
        else
            -- Why bytes may be missing for good: the capture cut the packet (snap
            -- length), the sender closed (FIN in this segment), or TCP reassembly is off.
            local why_short = nil
            if len < tvb:reported_len() then
                why_short = "capture shorter than the packet"
            elseif field_value(tcp_fin) then
                why_short = "the sender closed the connection"
            elseif not pinfo.can_desegment or pinfo.can_desegment == 0 then
                why_short = "continues in the next segment"
            end

            if available < HEADER_LEN then
                if not why_short then
                    pinfo.desegment_offset = offset
                    pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
                    break
                end
                local item = tree:add(cptp, tvb(offset, available))
                item:add(f.data, tvb(offset, available))
                item:add_proto_expert_info(e.truncated, string.format(
                    "Message cut short: %s of the 4-byte header (%s)",
                    plural(available, "byte", "bytes"), why_short))
                summaries[#summaries + 1] = "header cut short"
                offset = len
                break
            end

            local version, kind, count, id_len = split_word(tvb(offset, HEADER_LEN):uint())
            if version ~= VERSION or not TYPES[kind] then
                -- Nothing after a bad header can be framed: show it and stop.
                local item = tree:add(cptp, tvb(offset, available))
                add_header(item, tvb, offset)
                if version ~= VERSION then
                    item:add_proto_expert_info(e.bad_version, string.format(
                        "Wrong protocol version %d (cPTP is version 7)", version))
                end
                if not TYPES[kind] then
                    item:add_proto_expert_info(e.unknown_type, string.format(
                        "Unknown message type %d (1 = Welcome, 2 = Redirect)", kind))
                end
                if available > HEADER_LEN then
                    item:add(f.data, tvb(offset + HEADER_LEN, available - HEADER_LEN))
                end
                local what = version ~= VERSION and ("version " .. version)
                    or ("type " .. kind)
                item:append_text(", malformed (" .. what .. ")")
                summaries[#summaries + 1] = "Malformed message (" .. what .. ")"
                offset = len
                break
            end

            local total = HEADER_LEN + id_len + ENTRY_LEN * count
            if available < total and not why_short then
                -- Ask TCP for more; remember what we know in case the sender closes first.
                if stream and not pinfo.visited then
                    local began = pending[stream] and pending[stream].began or pinfo.number
                    pending[stream] = { src = tostring(pinfo.src), port = pinfo.src_port,
                        kind = kind, count = count, total = total, have = available,
                        began = began }
                end
                pinfo.desegment_offset = offset
                pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
                break
            end
            if stream and not pinfo.visited then pending[stream] = nil end
            summaries[#summaries + 1] = add_message(tvb, tree, offset,
                math.min(available, total), kind, count, id_len, why_short)
            offset = offset + math.min(available, total)
            if available >= total then
                after_message = true
                if key and not completed[key] then completed[key] = pinfo.number end
            end
        end
    end

    if #summaries > 0 then
        pinfo.cols.info = table.concat(summaries, "; ")
    end
    return len
end
cptp.dissector = dissect

-- The heuristic: strict, since cPTP uses ephemeral ports on both sides. It takes the
-- first payload of a connection direction if it starts with a valid header (V = 7,
-- type 1 or 2, a sender ID of 1 to 255 printable ASCII bytes as far as present) and,
-- where the message is complete in this segment, what follows is only padding or more
-- valid messages. Returns false, never errors, for anything else.
local function plausible(tvb, offset)
    local len = tvb:len()
    if len - offset < HEADER_LEN then return false end
    local version, kind, count, id_len = split_word(tvb(offset, HEADER_LEN):uint())
    if version ~= VERSION or not TYPES[kind] or id_len == 0 then return false end
    local id_have = math.min(id_len, len - offset - HEADER_LEN)
    for i = 0, id_have - 1 do
        local c = tvb(offset + HEADER_LEN + i, 1):uint()
        if c < 0x20 or c > 0x7E then return false end
    end
    local stop = offset + HEADER_LEN + id_len + ENTRY_LEN * count
    while stop < len and is_padding(tvb(stop, 1):uint()) do stop = stop + 1 end
    if stop >= len then return true end
    return plausible(tvb, stop)
end

local function heuristic(tvb, pinfo, tree)
    if field_value(tcp_seq) ~= 1 then return false end
    if not plausible(tvb, 0) then return false end
    pinfo.conversation = cptp
    -- The local function, not cptp.dissector: that is a handle, and calling it would
    -- take away this call's right to ask TCP for more bytes (pinfo.can_desegment).
    dissect(tvb, pinfo, tree)
    return true
end
cptp:register_heuristic("tcp", heuristic)

-- The port preference: one entry in the "tcp.port" table, moved when the pref changes.
local registered_port = 0
function cptp.prefs_changed()
    local tcp_port = DissectorTable.get("tcp.port")
    local port = cptp.prefs["tcp.port"]
    if port == registered_port then return end
    if registered_port ~= 0 then tcp_port:remove(registered_port, cptp) end
    if port ~= 0 then tcp_port:add(port, cptp) end
    registered_port = port
end
DissectorTable.get("tcp.port"):add_for_decode_as(cptp)

-- A sender that closes with a message incomplete sends its FIN in a segment without
-- payload, which TCP hands to no dissector; this postdissector marks that FIN.
local cptp_close = Proto("cptp_close", "cPTP connection close")
function cptp_close.dissector(tvb, pinfo, tree)
    if not pinfo.visited and field_value(tcp_fin) then
        local stream = field_value(tcp_stream)
        local p = stream and pending[stream]
        if p and p.src == tostring(pinfo.src) and p.port == pinfo.src_port then
            cut_at_fin[pinfo.number] = p
            pending[stream] = nil
        end
    end
    local p = cut_at_fin[pinfo.number]
    if not p then return end
    pinfo.cols.protocol = "cPTP"
    local summary = string.format("%s cut short: connection closed after %d of %d bytes",
        TYPES[p.kind], p.have, p.total)
    pinfo.cols.info = summary
    local item = tree:add(cptp, tvb(0, 0), "cPTP (course Peer-to-Peer Transport Protocol), "
        .. summary)
    item:add_proto_expert_info(e.truncated, string.format(
        "Message cut short: %s announced, %d of %d bytes sent before the connection closed",
        plural(p.count, "peer", "peers"), p.have, p.total))
    item:add(cptp, tvb(0, 0), string.format("The %s began in frame %d", TYPES[p.kind],
        p.began)):set_generated()
end
register_postdissector(cptp_close)
