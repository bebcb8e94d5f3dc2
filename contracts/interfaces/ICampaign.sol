// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.28;

/// @title ICampaign
/// @notice The public face of one Spartacus campaign: sealed pledges, a live count, and an
///         on-chain reveal the moment the live count reaches the threshold.
/// @dev Every function that names its caller takes it from ERC-2771 (`_msgSender()`) behind
///      the deployment's one trusted forwarder, so a pledge can be signed by a key that holds no
///      ether and carried by any relayer; the pledger is then the signing key's address.
interface ICampaign {
    // ─── Types ──────────────────────────────────────────────────────────────────────

    /// @notice Lifecycle of a campaign. `Expired` is derived from the clock, never stored.
    enum State {
        Open,
        Revealed,
        Expired,
        Cancelled
    }

    /// @notice Who may read the roster after the reveal: the members only, or anyone.
    enum RevealScope {
        Members,
        Public
    }

    /// @notice What a pledge made after the reveal (a late joiner) gets.
    /// @dev `Known`: it is revealed to the members and receives the organizer's instructions,
    ///      never the earlier roster (nor the organizer's own record). `Roster`: it receives
    ///      the roster too, and its deposit stays locked until the deadline. `Closed`: no
    ///      pledge is taken after the reveal.
    enum LateJoiners {
        Known,
        Roster,
        Closed
    }

    /// @notice Lifecycle of one address's pledge.
    enum PledgeStatus {
        None,
        Live,
        Withdrawn
    }

    /// @notice Everything a creator chooses. The text fields live in event data only.
    /// @param title Short name of the campaign.
    /// @param purpose One sentence: what the campaign is for.
    /// @param description The longer public text.
    /// @param plan The public plan of action (the private instructions are sealed).
    /// @param threshold N: the live pledge count that triggers the reveal.
    /// @param deadline Unix time; the threshold must be reached strictly before it.
    /// @param keepers The keepers' 64-byte uncompressed secp256k1 public keys (no 0x04
    ///        prefix), sorted by strictly ascending derived address.
    /// @param keeperThreshold t: how many keepers' shares open a pledge.
    /// @param scope Who may read the roster after the reveal.
    /// @param lateJoiners What a pledge made after the reveal gets.
    /// @param deposit Wei each pledge locks (may be 0): the price of a fake pledge.
    /// @param beneficiary Zero: deposits go back to pledgers after the reveal; otherwise
    ///        the live pledges' deposits go to this address after the reveal.
    /// @param relay Empty, or the 33-byte compressed public key of the relay that e-mails the
    ///        members after the reveal: keepers grant it the roster like a member's key.
    /// @param relayNote Empty, or a note sealed to the relay's key (ECIES, see the Python package
    ///        `spartacus.relaynote`): the organizer's contact for progress e-mails, which only the
    ///        relay can read.
    /// @param instructions The organizer's sealed instructions (see the Python package
    ///        `spartacus.envelope`), readable apart from the organizer's own record; may be empty.
    struct Config {
        string title;
        string purpose;
        string description;
        string plan;
        uint32 threshold;
        uint64 deadline;
        bytes[] keepers;
        uint8 keeperThreshold;
        RevealScope scope;
        LateJoiners lateJoiners;
        uint96 deposit;
        address beneficiary;
        bytes relay;
        bytes relayNote;
        bytes instructions;
    }

    // ─── Errors ─────────────────────────────────────────────────────────────────────

    /// @notice Only the factory may initialise a campaign, once.
    error CampaignAlreadyInitialized();
    /// @notice `threshold` must be between 1 and `max`.
    error CampaignInvalidThreshold(uint256 threshold, uint256 max);
    /// @notice `deadline` must be in the future and at most `MAX_DURATION` away.
    error CampaignInvalidDeadline(uint256 deadline, uint256 now_, uint256 latest);
    /// @notice The keeper set must hold 1 to `MAX_KEEPERS` keys.
    error CampaignInvalidKeeperCount(uint256 count, uint256 max);
    /// @notice Keeper `index` is not a 64-byte public key.
    error CampaignInvalidKeeperKey(uint256 index);
    /// @notice Keepers must be sorted by strictly ascending address (no duplicates).
    error CampaignKeepersNotSorted(uint256 index);
    /// @notice `t` must satisfy 1 <= t <= n.
    error CampaignInvalidKeeperThreshold(uint256 t, uint256 n);
    /// @notice The relay key must be empty or a 33-byte compressed secp256k1 public key.
    error CampaignInvalidRelayKey();
    /// @notice The sealed instructions are longer than `max` bytes.
    error CampaignInvalidInstructions(uint256 length, uint256 max);
    /// @notice The note to the relay is longer than `max` bytes, or there is a note but no relay.
    error CampaignInvalidRelayNote(uint256 length, uint256 max);
    /// @notice The campaign is not in a state that allows this call.
    error CampaignWrongState(State state);
    /// @notice The campaign takes no pledge after its reveal (late joiners: closed).
    error CampaignClosedToLateJoiners();
    /// @notice The value sent must equal the deposit still required.
    error CampaignWrongDeposit(uint256 sent, uint256 required);
    /// @notice This address already has a live pledge in this campaign.
    error CampaignAlreadyPledged(address pledger, uint256 index);
    /// @notice The caller has no live pledge to withdraw.
    error CampaignNoLivePledge(address caller);
    /// @notice The creator's pledge carries the instructions: cancel the campaign instead.
    error CampaignCreatorCannotWithdraw();
    /// @notice The envelope is empty or longer than `max` bytes.
    error CampaignInvalidEnvelope(uint256 length, uint256 max);
    /// @notice The member key must be a 33-byte compressed secp256k1 public key.
    error CampaignInvalidMemberKey();
    /// @notice Only the creator may do this.
    error CampaignNotCreator(address caller);
    /// @notice Nothing is refundable to the caller now.
    error CampaignNothingToRefund(address caller);
    /// @notice Sending ether to `to` failed; the amount stays owed.
    error CampaignTransferFailed(address to, uint256 amount);
    /// @notice Only a keeper of this campaign may publish a release.
    error CampaignNotKeeper(address caller, uint256 keeperIndex);
    /// @notice The keeper set given does not match the campaign's.
    error CampaignKeeperSetMismatch();
    /// @notice A release must carry 1 to `max` bytes.
    error CampaignInvalidRelease(uint256 length, uint256 max);
    /// @notice Only the beneficiary may claim forfeited deposits, after the reveal.
    error CampaignNotBeneficiary(address caller);

    // ─── Events ─────────────────────────────────────────────────────────────────────

    /// @notice A pledge landed. The sealed bytes live here, not in storage.
    /// @param index Position of the pledge in this campaign (0 is the creator's).
    /// @param pledger The address that pledged (the signer of a relayed request).
    /// @param memberKey The pledger's fresh member public key (33 bytes, compressed).
    /// @param envelope The sealed pledge (see the Python package `spartacus.envelope`).
    /// @param count The live count after this pledge.
    event Pledged(uint256 indexed index, address indexed pledger, bytes memberKey, bytes envelope, uint256 count);
    /// @notice A pledge was withdrawn before the reveal; it will never be revealed.
    event Withdrawn(uint256 indexed index, address indexed pledger, uint256 count);
    /// @notice The live count reached the threshold: the campaign is revealed, for good.
    /// @param count The live count at the reveal.
    /// @param lastIndex The index of the pledge that made it; later pledges are late joiners.
    event ThresholdReached(uint256 count, uint256 lastIndex);
    /// @notice The creator cancelled the campaign before the reveal.
    event Cancelled(uint256 count);
    /// @notice A deposit went back to `to`.
    event Refunded(address indexed to, uint256 amount);
    /// @notice The beneficiary took `amount` of the live pledges' deposits.
    event DepositsClaimed(address indexed beneficiary, uint256 amount);
    /// @notice A keeper published (part of) its release for this campaign.
    event Released(uint256 indexed keeperIndex, address indexed keeper, bytes data);

    // ─── Functions ──────────────────────────────────────────────────────────────────

    /// @notice Called by the factory in the transaction that creates the clone: stores the
    ///         configuration and records the creator's sealed record as pledge 0.
    /// @param creator The address that created the campaign.
    /// @param paid The wei the creator sent, already in the clone (the factory creates it
    ///        with that value, which saves the 9,000 gas of a call with value).
    function initialize(
        address creator,
        uint256 paid,
        Config calldata config,
        bytes calldata envelope,
        bytes calldata memberKey
    ) external;

    /// @notice Pledge to join, with the deposit (or 0 if an earlier deposit is still held).
    /// @param envelope The sealed record (identity, contact) for the keepers' shares.
    /// @param memberKey A fresh compressed secp256k1 public key that will read the roster.
    /// @return index The pledge's index.
    function pledge(bytes calldata envelope, bytes calldata memberKey) external payable returns (uint256 index);

    /// @notice Withdraw the caller's live pledge before the reveal. The deposit stays
    ///         held for the caller: take it with `refund()`, or reuse it for a new pledge.
    function withdraw() external;

    /// @notice Send the caller's refundable deposit back to it (pull payment).
    function refund() external;

    /// @notice The creator cancels the campaign before the reveal; nothing is revealed.
    function cancel() external;

    /// @notice After the reveal, the beneficiary takes the live pledges' deposits.
    function claimDeposits() external;

    /// @notice A keeper publishes release bytes, only after the reveal.
    /// @param keeperSet The campaign's keeper addresses, in order (checked against a hash).
    /// @param keeperIndex The caller's position in `keeperSet`.
    /// @param data The release bytes (see the Python package `spartacus.release`).
    function release(address[] calldata keeperSet, uint256 keeperIndex, bytes calldata data) external;

    /// @notice The current state, with `Expired` derived from the deadline.
    function state() external view returns (State);

    /// @notice The live pledge count (withdrawn pledges excluded).
    function pledgeCount() external view returns (uint256);

    /// @notice N: the live count that triggers the reveal.
    function threshold() external view returns (uint256);

    /// @notice The deadline (unix time) for reaching the threshold.
    function deadline() external view returns (uint256);
}
