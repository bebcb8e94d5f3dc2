// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.28;

import {ICampaign} from "../interfaces/ICampaign.sol";
import {CampaignPuppet} from "./CampaignPuppet.sol";

/// @title RevertingReceiver
/// @notice Test-only griefer: a pledger (or beneficiary) whose `receive()` refuses ether.
///         Its own refund fails, and must stay owed; it must not block anyone else's refund
///         or the beneficiary's claim.
/// @dev `setAccepting(true)` lets a test show the deposit was kept and can still be paid.
contract RevertingReceiver is CampaignPuppet {
    // ─── Errors ─────────────────────────────────────────────────────────────────────

    /// @notice `receive()` refuses `amount` wei.
    error RevertingReceiverRefused(uint256 amount);

    // ─── Storage ────────────────────────────────────────────────────────────────────

    /// @notice Whether `receive()` takes ether (false at first).
    bool public accepting;

    // ─── Constructor ────────────────────────────────────────────────────────────────

    /// @notice Deploys a receiver for `campaign_`; any value sent funds its pledge.
    constructor(ICampaign campaign_) payable CampaignPuppet(campaign_) {}

    // ─── External ───────────────────────────────────────────────────────────────────

    /// @notice Turns the refusal off (or on again).
    function setAccepting(bool accepting_) external {
        _onlyOwner();
        accepting = accepting_;
    }

    /// @notice Refuses every payment unless `accepting`.
    receive() external payable {
        if (!accepting) revert RevertingReceiverRefused(msg.value);
    }
}
