// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.28;

import {ICampaign} from "./interfaces/ICampaign.sol";

/// @title Campaign
/// @notice One collective action: sealed pledges, a live count, and a reveal that fires
///         on-chain, in the very transaction whose pledge brings the live count to the
///         threshold. Deployed by `CampaignFactory` as EIP-1167 clones of one implementation.
/// @dev Pledges are sealed off-chain (the chain only ever sees ciphertext). Sealed bytes and
///      member keys live in events; storage keeps one slot per pledger. No function loops
///      over pledges, so every call costs the same at N = 10 and N = 100,000.
contract Campaign is ICampaign {
    // ─── Constants and immutables ───────────────────────────────────────────────────

    /// @notice Highest threshold a campaign may set.
    uint256 public constant MAX_THRESHOLD = 100_000;
    /// @notice Longest time from creation to deadline.
    uint256 public constant MAX_DURATION = 366 days;
    /// @notice Largest keeper set.
    uint256 public constant MAX_KEEPERS = 32;
    /// @notice Largest sealed pledge, in bytes.
    uint256 public constant MAX_ENVELOPE = 24_576;
    /// @notice Largest release in one transaction, in bytes.
    uint256 public constant MAX_RELEASE = 32_768;

    /// @notice The factory that deploys (and alone may initialise) campaigns.
    /// @dev An immutable lives in the implementation's code, so every clone sees it too.
    address public immutable factory;

    // ─── Storage ────────────────────────────────────────────────────────────────────

    /// @dev One pledger's record, packed in one slot (4 + 1 + 1 + 20 bytes).
    struct Pledge {
        uint32 index;
        PledgeStatus status;
        bool depositHeld; // the deposit is in this contract and owed to the pledger or the beneficiary
        bytes20 digest; // first 20 bytes of keccak256(envelope): binds storage to the event
    }

    // Slot 0 (read by every pledge): 20 + 8 + 1 + 1 + 1 + 1 = 32 bytes.
    address private _creator;
    uint64 private _deadline;
    State private _state; // only Open, Revealed or Cancelled are stored; Expired is derived
    RevealScope private _scope;
    uint8 private _keeperThreshold;
    uint8 private _keeperCount;

    // Slot 1 (read and written by every pledge, so the deposit rides along):
    // 4 + 4 + 4 + 5 + 4 + 11 = 32 bytes.
    uint32 private _threshold;
    uint32 private _count; // live pledges
    uint32 private _nextIndex; // pledges ever made, withdrawn ones included
    uint40 private _revealBlock;
    uint32 private _claimedCount; // live pledges whose deposit the beneficiary has taken
    uint88 private _deposit; // up to 3.09e26 wei

    // Slot 2.
    address private _beneficiary;

    // Slot 3: keccak256(abi.encodePacked(keeper addresses)); releases present the set.
    bytes32 private _keeperSetHash;

    mapping(address pledger => Pledge) private _pledges;

    // ─── Constructor and initialiser ────────────────────────────────────────────────

    /// @notice Deploys the implementation; it can never be initialised itself.
    constructor() {
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

        _creator = creator_;
        _deadline = config.deadline;
        _scope = config.scope;
        _keeperThreshold = config.keeperThreshold;
        _keeperCount = uint8(n);
        _threshold = config.threshold;
        if (config.beneficiary != address(0)) _beneficiary = config.beneficiary; // skip a no-op SSTORE
        _deposit = config.deposit;
        _keeperSetHash = _hashKeepers(config.keepers);

        // The creator's own sealed record (identity, contact, instructions) is pledge 0.
        _record(creator_, paid, envelope, memberKey);
    }

    // ─── External ───────────────────────────────────────────────────────────────────

    /// @inheritdoc ICampaign
    function pledge(bytes calldata envelope, bytes calldata memberKey) external payable returns (uint256 index) {
        State s = _state;
        // After the reveal the campaign goes on in public: pledges are still welcome.
        if (s == State.Open) {
            if (block.timestamp >= _deadline) revert CampaignWrongState(State.Expired);
        } else if (s != State.Revealed) {
            revert CampaignWrongState(s);
        }
        return _record(msg.sender, msg.value, envelope, memberKey);
    }

    /// @inheritdoc ICampaign
    function withdraw() external {
        State s = state();
        if (s != State.Open) revert CampaignWrongState(s);
        if (msg.sender == _creator) revert CampaignCreatorCannotWithdraw();
        Pledge storage p = _pledges[msg.sender];
        if (p.status != PledgeStatus.Live) revert CampaignNoLivePledge(msg.sender);

        p.status = PledgeStatus.Withdrawn; // depositHeld stays: refund() or a new pledge takes it
        uint32 count = _count - 1;
        _count = count;
        emit Withdrawn(p.index, msg.sender, count);
    }

    /// @inheritdoc ICampaign
    function refund() external {
        uint256 amount = refundableOf(msg.sender);
        if (amount == 0) revert CampaignNothingToRefund(msg.sender);
        _pledges[msg.sender].depositHeld = false; // effects before the interaction
        emit Refunded(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @inheritdoc ICampaign
    function cancel() external {
        if (msg.sender != _creator) revert CampaignNotCreator(msg.sender);
        State s = state();
        if (s != State.Open) revert CampaignWrongState(s);
        _state = State.Cancelled;
        emit Cancelled(_count);
    }

    /// @inheritdoc ICampaign
    function claimDeposits() external {
        address beneficiary_ = _beneficiary;
        if (beneficiary_ == address(0) || msg.sender != beneficiary_) revert CampaignNotBeneficiary(msg.sender);
        uint256 amount = claimableDeposits();
        if (amount == 0) revert CampaignNothingToRefund(msg.sender);
        _claimedCount = _count; // after the reveal the live count never goes down
        emit DepositsClaimed(beneficiary_, amount);
        _send(beneficiary_, amount);
    }

    /// @inheritdoc ICampaign
    function release(address[] calldata keeperSet, uint256 keeperIndex, bytes calldata data) external {
        if (keccak256(abi.encodePacked(keeperSet)) != _keeperSetHash) revert CampaignKeeperSetMismatch();
        if (keeperIndex >= keeperSet.length || keeperSet[keeperIndex] != msg.sender) {
            revert CampaignNotKeeper(msg.sender, keeperIndex);
        }
        State s = _state;
        if (s != State.Revealed) revert CampaignWrongState(state());
        if (data.length == 0 || data.length > MAX_RELEASE) revert CampaignInvalidRelease(data.length, MAX_RELEASE);
        emit Released(keeperIndex, msg.sender, data);
    }

    // ─── Views ──────────────────────────────────────────────────────────────────────

    /// @inheritdoc ICampaign
    function state() public view returns (State) {
        State s = _state;
        if (s == State.Open && block.timestamp >= _deadline) return State.Expired;
        return s;
    }

    /// @inheritdoc ICampaign
    function pledgeCount() external view returns (uint256) {
        return _count;
    }

    /// @inheritdoc ICampaign
    function threshold() external view returns (uint256) {
        return _threshold;
    }

    /// @inheritdoc ICampaign
    function deadline() external view returns (uint256) {
        return _deadline;
    }

    /// @notice The address that created the campaign (its record is pledge 0).
    function creator() external view returns (address) {
        return _creator;
    }

    /// @notice Wei each pledge locks.
    function deposit() external view returns (uint256) {
        return _deposit;
    }

    /// @notice Where the live pledges' deposits go after the reveal (zero: back to pledgers).
    function beneficiary() external view returns (address) {
        return _beneficiary;
    }

    /// @notice Who may read the roster after the reveal.
    function scope() external view returns (RevealScope) {
        return _scope;
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
        return _nextIndex;
    }

    /// @notice The block of the reveal, or 0 before it.
    function revealBlock() external view returns (uint256) {
        return _revealBlock;
    }

    /// @notice One address's pledge: its index, status, whether its deposit is still held,
    ///         and the first 20 bytes of keccak256 of its envelope.
    function pledgeOf(address pledger)
        external
        view
        returns (uint256 index, PledgeStatus status, bool depositHeld, bytes20 envelopeDigest)
    {
        Pledge memory p = _pledges[pledger];
        return (p.index, p.status, p.depositHeld, p.digest);
    }

    /// @notice What `refund()` would send `pledger` now.
    function refundableOf(address pledger) public view returns (uint256) {
        Pledge memory p = _pledges[pledger];
        if (!p.depositHeld) return 0;
        if (p.status == PledgeStatus.Withdrawn) return _deposit;
        State s = state();
        if (s == State.Expired || s == State.Cancelled) return _deposit;
        if (s == State.Revealed && _beneficiary == address(0)) return _deposit;
        return 0; // Open: withdraw first; Revealed with a beneficiary: the deposit is forfeit
    }

    /// @notice What `claimDeposits()` would send the beneficiary now.
    function claimableDeposits() public view returns (uint256) {
        if (_state != State.Revealed || _beneficiary == address(0)) return 0;
        return uint256(_count - _claimedCount) * _deposit;
    }

    // ─── Internal ───────────────────────────────────────────────────────────────────

    /// @dev Records a live pledge for `pledger`; fires the reveal when the count reaches N.
    function _record(address pledger, uint256 paid, bytes calldata envelope, bytes calldata memberKey)
        private
        returns (uint256 index)
    {
        if (envelope.length == 0 || envelope.length > MAX_ENVELOPE) {
            revert CampaignInvalidEnvelope(envelope.length, MAX_ENVELOPE);
        }
        // A compressed secp256k1 key: 0x02 or 0x03, then 32 bytes.
        if (memberKey.length != 33 || (memberKey[0] != 0x02 && memberKey[0] != 0x03)) {
            revert CampaignInvalidMemberKey();
        }
        Pledge storage p = _pledges[pledger];
        if (p.status == PledgeStatus.Live) revert CampaignAlreadyPledged(pledger, p.index);
        // A deposit still held from a withdrawn pledge is reused rather than paid twice.
        uint256 required = p.depositHeld ? 0 : _deposit;
        if (paid != required) revert CampaignWrongDeposit(paid, required);

        index = _nextIndex;
        uint32 count = _count + 1;
        _nextIndex = uint32(index + 1);
        _count = count;
        _pledges[pledger] = Pledge({
            index: uint32(index),
            status: PledgeStatus.Live,
            depositHeld: p.depositHeld || _deposit != 0,
            digest: bytes20(keccak256(envelope))
        });
        emit Pledged(index, pledger, memberKey, envelope, count);

        // The reveal: same transaction as the pledge that makes it, and only once.
        if (_state == State.Open && count >= _threshold) {
            _state = State.Revealed;
            _revealBlock = uint40(block.number);
            emit ThresholdReached(count, index);
        }
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
        // `to` is always msg.sender (refund) or the configured beneficiary (claimDeposits),
        // and the amount is what the books owe it, cleared before this call.
        // slither-disable-next-line arbitrary-send-eth
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert CampaignTransferFailed(to, amount);
    }
}
