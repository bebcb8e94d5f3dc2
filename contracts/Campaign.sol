// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.28;

import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {ICampaign} from "./interfaces/ICampaign.sol";

/// @title Campaign
/// @notice One collective action: sealed pledges, a live count, and a reveal that fires
///         on-chain, in the very transaction whose pledge brings the live count to the
///         threshold. Deployed by `CampaignFactory` as EIP-1167 clones of one implementation.
/// @dev Pledges are sealed off-chain (the chain only ever sees ciphertext). Sealed bytes and
///      member keys live in events; storage keeps one slot per pledger. No function loops
///      over pledges, so every call costs the same at N = 10 and N = 100,000. Callers are
///      taken from ERC-2771 (`_msgSender()`): the implementation's immutable trusted forwarder
///      is every clone's, and nothing here batches or delegates calls, so the appended sender
///      cannot be spoofed (the ERC-2771 + Multicall pitfall).
contract Campaign is ICampaign, ERC2771Context {
    // ─── Constants and immutables ───────────────────────────────────────────────────

    /// @notice Highest threshold a campaign may set.
    uint256 public constant MAX_THRESHOLD = 100_000;
    /// @notice Longest time from creation to deadline.
    uint256 public constant MAX_DURATION = 366 days;
    /// @notice Largest keeper set.
    uint256 public constant MAX_KEEPERS = 32;
    /// @notice Largest sealed pledge, in bytes.
    uint256 public constant MAX_ENVELOPE = 24_576;
    /// @notice Largest sealed instructions, in bytes.
    uint256 public constant MAX_INSTRUCTIONS = 24_576;
    /// @notice Largest note to the relay, in bytes.
    uint256 public constant MAX_RELAY_NOTE = 1024;
    /// @notice Largest release in one transaction, in bytes.
    uint256 public constant MAX_RELEASE = 32_768;

    /// @notice The factory that deploys (and alone may initialise) campaigns.
    /// @dev An immutable lives in the implementation's code, so every clone sees it too.
    address public immutable factory;

    // ─── Storage ────────────────────────────────────────────────────────────────────

    /// @dev One pledger's record, packed in one slot (4 + 1 + 1 + 1 + 20 bytes).
    struct Pledge {
        uint32 index;
        PledgeStatus status;
        bool depositHeld; // the deposit is in this contract and owed to the pledger or the beneficiary
        bool late; // made after the reveal
        bytes20 digest; // keccak256 of the Pledged event's data[:20] (pledge 0: with the instructions' hash)
    }

    /// @dev Everything a pledge reads and writes, in one slot (1 + 1 + 5 + 4 + 4 + 4 + 12 = 31 bytes):
    ///      a pledge costs one cold read and one write here, besides its own record.
    struct Core {
        State state; // only Open, Revealed or Cancelled are stored; Expired is derived
        LateJoiners lateJoiners;
        uint40 deadline;
        uint32 threshold;
        uint32 count; // live pledges
        uint32 nextIndex; // pledges ever made, withdrawn ones included
        uint96 deposit;
    }

    // Slot 0.
    Core private _core;

    // Slot 1: 20 + 5 + 4 + 1 + 1 + 1 = 32 bytes.
    address private _creator;
    uint40 private _revealBlock;
    uint32 private _claimedCount; // live pledges whose deposit the beneficiary has taken
    RevealScope private _scope;
    uint8 private _keeperThreshold;
    uint8 private _keeperCount;

    // Slot 2: 20 + 12 bytes.
    address private _beneficiary;
    bytes12 private _relayTag; // keccak256(relay key)[:12]; zero when the campaign names no relay

    // Slot 3: keccak256(abi.encodePacked(keeper addresses)); releases present the set.
    bytes32 private _keeperSetHash;

    mapping(address pledger => Pledge) private _pledges;

    // ─── Constructor and initialiser ────────────────────────────────────────────────

    /// @notice Deploys the implementation; it can never be initialised itself.
    /// @param trustedForwarder The deployment's ERC-2771 forwarder (immutable, shared by clones).
    constructor(address trustedForwarder) ERC2771Context(trustedForwarder) {
        factory = msg.sender;
        _creator = address(1); // marks the implementation as initialised
    }

    /// @inheritdoc ICampaign
    function initialize(
        address creator_,
        uint256 paid,
        Config calldata config,
        bytes calldata envelope,
        bytes calldata memberKey
    ) external {
        if (msg.sender != factory || _creator != address(0)) revert CampaignAlreadyInitialized();
        _creator = creator_;
        Core memory c = _configure(config);
        // The creator's own sealed record (identity, contact) is pledge 0; its digest also
        // covers the sealed instructions, so a keeper can check those against storage too.
        _record(c, creator_, paid, envelope, memberKey, keccak256(config.instructions));
    }

    // ─── External ───────────────────────────────────────────────────────────────────

    /// @inheritdoc ICampaign
    function pledge(bytes calldata envelope, bytes calldata memberKey) external payable returns (uint256 index) {
        Core memory c = _core;
        if (c.state == State.Open) {
            if (block.timestamp >= c.deadline) revert CampaignWrongState(State.Expired);
        } else if (c.state == State.Revealed) {
            // After the reveal the campaign goes on in public, unless it is closed to late joiners.
            if (c.lateJoiners == LateJoiners.Closed) revert CampaignClosedToLateJoiners();
        } else {
            revert CampaignWrongState(c.state);
        }
        return _record(c, _msgSender(), msg.value, envelope, memberKey, 0);
    }

    /// @inheritdoc ICampaign
    function withdraw() external {
        address sender = _msgSender();
        Core memory c = _core;
        State s = _stateOf(c);
        if (s != State.Open) revert CampaignWrongState(s);
        if (sender == _creator) revert CampaignCreatorCannotWithdraw();
        Pledge storage p = _pledges[sender];
        if (p.status != PledgeStatus.Live) revert CampaignNoLivePledge(sender);

        p.status = PledgeStatus.Withdrawn; // depositHeld stays: refund() or a new pledge takes it
        c.count -= 1;
        _writeCore(c);
        emit Withdrawn(p.index, sender, c.count);
    }

    /// @inheritdoc ICampaign
    function refund() external {
        address sender = _msgSender();
        uint256 amount = refundableOf(sender);
        if (amount == 0) revert CampaignNothingToRefund(sender);
        _pledges[sender].depositHeld = false; // effects before the interaction
        emit Refunded(sender, amount);
        _send(sender, amount);
    }

    /// @inheritdoc ICampaign
    function cancel() external {
        address sender = _msgSender();
        if (sender != _creator) revert CampaignNotCreator(sender);
        Core memory c = _core;
        State s = _stateOf(c);
        if (s != State.Open) revert CampaignWrongState(s);
        _core.state = State.Cancelled;
        emit Cancelled(c.count);
    }

    /// @inheritdoc ICampaign
    function claimDeposits() external {
        address sender = _msgSender();
        address beneficiary_ = _beneficiary;
        if (beneficiary_ == address(0) || sender != beneficiary_) revert CampaignNotBeneficiary(sender);
        uint256 amount = claimableDeposits();
        if (amount == 0) revert CampaignNothingToRefund(sender);
        _claimedCount = _core.count; // after the reveal the live count never goes down
        emit DepositsClaimed(beneficiary_, amount);
        _send(beneficiary_, amount);
    }

    /// @inheritdoc ICampaign
    function release(address[] calldata keeperSet, uint256 keeperIndex, bytes calldata data) external {
        address sender = _msgSender();
        if (keccak256(abi.encodePacked(keeperSet)) != _keeperSetHash) revert CampaignKeeperSetMismatch();
        if (keeperIndex >= keeperSet.length || keeperSet[keeperIndex] != sender) {
            revert CampaignNotKeeper(sender, keeperIndex);
        }
        if (_core.state != State.Revealed) revert CampaignWrongState(state());
        if (data.length == 0 || data.length > MAX_RELEASE) revert CampaignInvalidRelease(data.length, MAX_RELEASE);
        emit Released(keeperIndex, sender, data);
    }

    // ─── Views ──────────────────────────────────────────────────────────────────────

    /// @inheritdoc ICampaign
    function state() public view returns (State) {
        return _stateOf(_core);
    }

    /// @inheritdoc ICampaign
    function pledgeCount() external view returns (uint256) {
        return _core.count;
    }

    /// @inheritdoc ICampaign
    function threshold() external view returns (uint256) {
        return _core.threshold;
    }

    /// @inheritdoc ICampaign
    function deadline() external view returns (uint256) {
        return _core.deadline;
    }

    /// @notice The address that created the campaign (its record is pledge 0).
    function creator() external view returns (address) {
        return _creator;
    }

    /// @notice Wei each pledge locks.
    function deposit() external view returns (uint256) {
        return _core.deposit;
    }

    /// @notice Where the live pledges' deposits go after the reveal (zero: back to pledgers).
    function beneficiary() external view returns (address) {
        return _beneficiary;
    }

    /// @notice Who may read the roster after the reveal.
    function scope() external view returns (RevealScope) {
        return _scope;
    }

    /// @notice What a pledge made after the reveal gets.
    function lateJoiners() external view returns (LateJoiners) {
        return _core.lateJoiners;
    }

    /// @notice The first 12 bytes of keccak256 of the relay's key (zero: no relay), so that a
    ///         keeper can check the relay named in the creation event against storage.
    function relayTag() external view returns (bytes12) {
        return _relayTag;
    }

    /// @notice t: how many keepers' shares open a pledge.
    function keeperThreshold() external view returns (uint256) {
        return _keeperThreshold;
    }

    /// @notice n: how many keepers hold shares.
    function keeperCount() external view returns (uint256) {
        return _keeperCount;
    }

    /// @notice keccak256 of the packed keeper addresses, in order.
    function keeperSetHash() external view returns (bytes32) {
        return _keeperSetHash;
    }

    /// @notice Pledges ever made, withdrawn ones included (the next pledge's index).
    function totalPledges() external view returns (uint256) {
        return _core.nextIndex;
    }

    /// @notice The block of the reveal, or 0 before it.
    function revealBlock() external view returns (uint256) {
        return _revealBlock;
    }

    /// @notice One address's pledge: its index, status, whether its deposit is still held,
    ///         whether it came after the reveal, and its 20-byte digest (see `Pledge`).
    function pledgeOf(address pledger)
        external
        view
        returns (uint256 index, PledgeStatus status, bool depositHeld, bool late, bytes20 digest)
    {
        Pledge memory p = _pledges[pledger];
        return (p.index, p.status, p.depositHeld, p.late, p.digest);
    }

    /// @notice What `refund()` would send `pledger` now.
    function refundableOf(address pledger) public view returns (uint256) {
        Pledge memory p = _pledges[pledger];
        if (!p.depositHeld) return 0;
        Core memory c = _core;
        if (p.status == PledgeStatus.Withdrawn) return c.deposit;
        State s = _stateOf(c);
        if (s == State.Expired || s == State.Cancelled) return c.deposit;
        if (s == State.Revealed && _beneficiary == address(0)) {
            // A late joiner that received the roster keeps its deposit locked until the deadline:
            // the roster is never cheaper than the deposit (no pledge-and-refund in one transaction).
            if (p.late && c.lateJoiners == LateJoiners.Roster && block.timestamp < c.deadline) return 0;
            return c.deposit;
        }
        return 0; // Open: withdraw first; Revealed with a beneficiary: the deposit is forfeit
    }

    /// @notice What `claimDeposits()` would send the beneficiary now.
    function claimableDeposits() public view returns (uint256) {
        Core memory c = _core;
        if (c.state != State.Revealed || _beneficiary == address(0)) return 0;
        return uint256(c.count - _claimedCount) * c.deposit;
    }

    // ─── Internal ───────────────────────────────────────────────────────────────────

    /// @dev Checks and stores the configuration; returns the core, to be written with pledge 0.
    function _configure(Config calldata config) private returns (Core memory) {
        if (config.threshold == 0 || config.threshold > MAX_THRESHOLD) {
            revert CampaignInvalidThreshold(config.threshold, MAX_THRESHOLD);
        }
        if (config.deadline <= block.timestamp || config.deadline > block.timestamp + MAX_DURATION) {
            revert CampaignInvalidDeadline(config.deadline, block.timestamp, block.timestamp + MAX_DURATION);
        }
        uint256 n = config.keepers.length;
        if (n == 0 || n > MAX_KEEPERS) revert CampaignInvalidKeeperCount(n, MAX_KEEPERS);
        if (config.keeperThreshold == 0 || config.keeperThreshold > n) {
            revert CampaignInvalidKeeperThreshold(config.keeperThreshold, n);
        }
        bytes calldata relay = config.relay;
        if (relay.length != 0 && (relay.length != 33 || (relay[0] != 0x02 && relay[0] != 0x03))) {
            revert CampaignInvalidRelayKey();
        }
        if (config.instructions.length > MAX_INSTRUCTIONS) {
            revert CampaignInvalidInstructions(config.instructions.length, MAX_INSTRUCTIONS);
        }
        uint256 note = config.relayNote.length;
        if (note > MAX_RELAY_NOTE || (note != 0 && relay.length == 0)) {
            revert CampaignInvalidRelayNote(note, MAX_RELAY_NOTE);
        }

        _scope = config.scope;
        _keeperThreshold = config.keeperThreshold;
        _keeperCount = uint8(n);
        if (config.beneficiary != address(0) || relay.length != 0) {
            // one SSTORE for both, skipped when both are zero
            _beneficiary = config.beneficiary;
            if (relay.length != 0) _relayTag = bytes12(keccak256(relay));
        }
        _keeperSetHash = _hashKeepers(config.keepers);
        return Core({
            state: State.Open,
            lateJoiners: config.lateJoiners,
            deadline: uint40(config.deadline), // checked above: at most a year from now
            threshold: config.threshold,
            count: 0,
            nextIndex: 0,
            deposit: config.deposit
        });
    }

    /// @dev Records a live pledge for `pledger` and writes `c` back; fires the reveal when the
    ///      count reaches N. `c` is the campaign's core, already checked to take a pledge.
    ///      `extra` is zero, or (pledge 0) the hash of the sealed instructions.
    function _record(
        Core memory c,
        address pledger,
        uint256 paid,
        bytes calldata envelope,
        bytes calldata memberKey,
        bytes32 extra
    ) private returns (uint256 index) {
        if (envelope.length == 0 || envelope.length > MAX_ENVELOPE) {
            revert CampaignInvalidEnvelope(envelope.length, MAX_ENVELOPE);
        }
        // A compressed secp256k1 key: 0x02 or 0x03, then 32 bytes.
        if (memberKey.length != 33 || (memberKey[0] != 0x02 && memberKey[0] != 0x03)) {
            revert CampaignInvalidMemberKey();
        }
        Pledge memory old = _pledges[pledger];
        if (old.status == PledgeStatus.Live) revert CampaignAlreadyPledged(pledger, old.index);
        // A deposit still held from a withdrawn pledge is reused rather than paid twice.
        if (paid != (old.depositHeld ? 0 : c.deposit)) revert CampaignWrongDeposit(paid, old.depositHeld ? 0 : c.deposit);
        index = c.nextIndex;
        c.nextIndex += 1;
        c.count += 1;
        bytes32 logHash = _emitPledged(index, pledger, memberKey, envelope, c.count);
        _writePledge(
            _pledges[pledger],
            Pledge({
                index: uint32(index),
                status: PledgeStatus.Live,
                depositHeld: old.depositHeld || c.deposit != 0,
                late: c.state == State.Revealed,
                digest: bytes20(extra == 0 ? logHash : keccak256(abi.encodePacked(logHash, extra)))
            })
        );

        // The reveal: same transaction as the pledge that makes it, and only once.
        if (c.state == State.Open && c.count >= c.threshold) {
            c.state = State.Revealed;
            _revealBlock = uint40(block.number);
            emit ThresholdReached(c.count, index);
        }
        _writeCore(c);
    }

    /// @dev `_pledges[...] = p` in one SSTORE (the compiler writes a packed struct field by field,
    ///      a warm read and write each). Layout as Solidity packs `Pledge`, lowest bits first.
    function _writePledge(Pledge storage slot, Pledge memory p) private {
        uint256 word = uint256(p.index) | (uint256(p.status) << 32) | (p.depositHeld ? 1 << 40 : 0)
            | (p.late ? 1 << 48 : 0) | (uint256(uint160(p.digest)) << 56);
        assembly ("memory-safe") {
            sstore(slot.slot, word)
        }
    }

    /// @dev `_core = c` in one SSTORE; layout as Solidity packs `Core`, lowest bits first.
    function _writeCore(Core memory c) private {
        uint256 word = uint256(c.state) | (uint256(c.lateJoiners) << 8) | (uint256(c.deadline) << 16)
            | (uint256(c.threshold) << 56) | (uint256(c.count) << 88) | (uint256(c.nextIndex) << 120)
            | (uint256(c.deposit) << 152);
        assembly ("memory-safe") {
            sstore(_core.slot, word)
        }
    }

    /// @dev Emits `Pledged(index, pledger, memberKey, envelope, count)` from one memory image of its
    ///      ABI-encoded data, and returns keccak256 of those data bytes: the pledge's digest, which a
    ///      keeper recomputes from the log it reads (a node that alters a log is caught by storage).
    ///      Hand-encoded because the compiler's encoder copies and checks the same bytes twice.
    function _emitPledged(
        uint256 index,
        address pledger,
        bytes calldata memberKey,
        bytes calldata envelope,
        uint256 count
    ) private returns (bytes32 dataHash) {
        bytes32 topic = Pledged.selector;
        assembly ("memory-safe") {
            let m := mload(0x40)
            // head: offset(memberKey) = 0x60, offset(envelope) = 0xc0 (memberKey is 33 bytes: 2 words), count
            mstore(m, 0x60)
            mstore(add(m, 0x20), 0xc0)
            mstore(add(m, 0x40), count)
            // memberKey: length, then 33 bytes zero-padded to 64
            mstore(add(m, 0x60), 33)
            mstore(add(m, 0xa0), 0)
            calldatacopy(add(m, 0x80), memberKey.offset, 33)
            // envelope: length, then its bytes zero-padded to a whole word
            let len := envelope.length
            mstore(add(m, 0xc0), len)
            let padded := and(add(len, 31), not(31))
            mstore(add(m, add(0xc0, padded)), 0) // the last word's padding (len > 0: checked)
            calldatacopy(add(m, 0xe0), envelope.offset, len)
            let size := add(0xe0, padded)
            dataHash := keccak256(m, size)
            log3(m, size, topic, index, pledger)
        }
    }

    /// @dev The state with `Expired` derived from the deadline.
    function _stateOf(Core memory c) private view returns (State) {
        if (c.state == State.Open && block.timestamp >= c.deadline) return State.Expired;
        return c.state;
    }

    /// @dev Checks the keeper keys and hashes their addresses, in order.
    function _hashKeepers(bytes[] calldata keepers) private pure returns (bytes32) {
        address[] memory addrs = new address[](keepers.length);
        address previous = address(0);
        for (uint256 i = 0; i < keepers.length; ++i) {
            if (keepers[i].length != 64) revert CampaignInvalidKeeperKey(i);
            address a = address(uint160(uint256(keccak256(keepers[i]))));
            // Strictly ascending: no duplicate keeper can count twice towards t.
            if (a <= previous) revert CampaignKeepersNotSorted(i);
            addrs[i] = a;
            previous = a;
        }
        return keccak256(abi.encodePacked(addrs));
    }

    /// @dev Sends ether; a failure reverts the whole call, so the amount stays owed.
    function _send(address to, uint256 amount) private {
        // `to` is always the caller (refund) or the configured beneficiary (claimDeposits),
        // and the amount is what the books owe it, cleared before this call.
        // slither-disable-next-line arbitrary-send-eth
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert CampaignTransferFailed(to, amount);
    }
}
