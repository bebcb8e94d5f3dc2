// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.28;

import {ICampaign} from "../interfaces/ICampaign.sol";

/// @title RevertingReceiver
/// @notice Test-only griefer: a pledger (or beneficiary) whose `receive()` refuses ether.
///         Its own refund fails, and must stay owed; it must not block anyone else's refund
///         or the beneficiary's claim.
/// @dev `setAccepting(true)` lets a test show the deposit was kept and can still be paid.
contract RevertingReceiver {
    // ─── Errors ─────────────────────────────────────────────────────────────────────

    /// @notice Only the deployer may drive the receiver.
    error RevertingReceiverNotOwner(address caller);
    /// @notice `receive()` refuses `amount` wei.
    error RevertingReceiverRefused(uint256 amount);

    // ─── Immutables ─────────────────────────────────────────────────────────────────

    /// @notice The campaign this receiver pledges to.
    ICampaign public immutable campaign;
    /// @notice The account that deployed the receiver.
    address public immutable owner;

    // ─── Storage ────────────────────────────────────────────────────────────────────

    /// @notice Whether `receive()` takes ether (false at first).
    bool public accepting;

    // ─── Constructor ────────────────────────────────────────────────────────────────

    /// @notice Deploys a receiver for `campaign_`; any value sent funds its pledge.
    constructor(ICampaign campaign_) payable {
        campaign = campaign_;
        owner = msg.sender;
    }

    // ─── External ───────────────────────────────────────────────────────────────────

    /// @notice Turns the refusal off (or on again).
    function setAccepting(bool accepting_) external {
        _onlyOwner();
        accepting = accepting_;
    }

    /// @notice Pledges to the campaign, paying `value` out of this contract's balance.
    function pledge(bytes calldata envelope, bytes calldata memberKey, uint256 value) external {
        _onlyOwner();
        campaign.pledge{value: value}(envelope, memberKey);
    }

    /// @notice Withdraws this contract's pledge.
    function withdraw() external {
        _onlyOwner();
        campaign.withdraw();
    }

    /// @notice Asks for this contract's refund; the campaign's revert bubbles up unchanged.
    function refund() external {
        _onlyOwner();
        campaign.refund();
    }

    /// @notice Claims the forfeited deposits, when this contract is the beneficiary.
    function claimDeposits() external {
        _onlyOwner();
        campaign.claimDeposits();
    }

    /// @notice Refuses every payment unless `accepting`.
    receive() external payable {
        if (!accepting) revert RevertingReceiverRefused(msg.value);
    }

    // ─── Internal ───────────────────────────────────────────────────────────────────

    function _onlyOwner() private view {
        if (msg.sender != owner) revert RevertingReceiverNotOwner(msg.sender);
    }
}
