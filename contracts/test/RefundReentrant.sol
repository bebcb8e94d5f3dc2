// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.28;

import {ICampaign} from "../interfaces/ICampaign.sol";
import {CampaignPuppet} from "./CampaignPuppet.sol";

/// @title RefundReentrant
/// @notice Test-only attacker. It pledges, withdraws and takes its refund (or, as a
///         beneficiary, claims deposits), and when the campaign pays it, its `receive()`
///         calls back into the campaign (refund, withdraw, pledge or claim, as chosen) to
///         try to take or reuse the same deposit twice.
/// @dev Each re-entry is a low-level call whose outcome is recorded rather than bubbled, so
///      the outer payment completes and a test can check that the attacker got exactly its
///      due and nothing more. With `bubble` set, a failed re-entry reverts `receive()`.
contract RefundReentrant is CampaignPuppet {
    // ─── Types ──────────────────────────────────────────────────────────────────────

    /// @notice What `receive()` does with the campaign's payment.
    enum Mode {
        None, // take the payment quietly
        Refund, // refund() again
        Withdraw, // withdraw()
        PledgeFree, // pledge() again, reusing the deposit being refunded (value 0)
        PledgePaid, // pledge() again, paying the deposit out of the payment
        Claim // claimDeposits() again
    }

    // ─── Errors ─────────────────────────────────────────────────────────────────────

    /// @notice A re-entry failed and `bubble` is set: the campaign's payment is refused.
    error RefundReentrantReentryFailed(Mode mode, bytes reason);

    // ─── Events ─────────────────────────────────────────────────────────────────────

    /// @notice `receive()` tried to re-enter the campaign.
    /// @param mode What it tried.
    /// @param depth Re-entry number, from 1.
    /// @param success Whether the campaign accepted the call.
    /// @param result The call's return or revert data.
    event Reentered(Mode mode, uint256 depth, bool success, bytes result);

    // ─── Storage ────────────────────────────────────────────────────────────────────

    /// @notice What `receive()` tries.
    Mode public mode;
    /// @notice How many times `receive()` re-enters, at most (nested, one per payment).
    uint256 public maxDepth;
    /// @notice Whether a failed re-entry makes `receive()` revert.
    bool public bubble;
    /// @notice Re-entries tried so far.
    uint256 public attempts;
    /// @notice Re-entries the campaign accepted.
    uint256 public successes;
    /// @notice Total wei received from anyone.
    uint256 public received;
    /// @notice Return or revert data of the last re-entry.
    bytes public lastResult;

    uint256 private _depth;

    // ─── Constructor ────────────────────────────────────────────────────────────────

    /// @notice Deploys an attacker aimed at `campaign_`; any value sent funds its pledges.
    constructor(ICampaign campaign_) payable CampaignPuppet(campaign_) {}

    // ─── External ───────────────────────────────────────────────────────────────────

    /// @notice Chooses what `receive()` does.
    /// @param mode_ The re-entry to try.
    /// @param maxDepth_ How many nested re-entries to try at most.
    /// @param bubble_ Whether a failed re-entry reverts `receive()`.
    function arm(Mode mode_, uint256 maxDepth_, bool bubble_) external {
        _onlyOwner();
        mode = mode_;
        maxDepth = maxDepth_;
        bubble = bubble_;
    }

    /// @notice Takes the campaign's payment and re-enters it as armed.
    receive() external payable {
        received += msg.value;
        if (msg.sender != address(campaign) || mode == Mode.None || _depth >= maxDepth) return;
        _depth += 1;
        attempts += 1;
        // PledgePaid hands the payment straight back as the new pledge's deposit.
        uint256 value = mode == Mode.PledgePaid ? msg.value : 0;
        (bool ok, bytes memory result) = address(campaign).call{value: value}(_calldata());
        lastResult = result;
        if (ok) successes += 1;
        emit Reentered(mode, _depth, ok, result);
        _depth -= 1;
        if (!ok && bubble) revert RefundReentrantReentryFailed(mode, result);
    }

    // ─── Internal ───────────────────────────────────────────────────────────────────

    function _calldata() private view returns (bytes memory) {
        Mode m = mode;
        if (m == Mode.Refund) return abi.encodeCall(ICampaign.refund, ());
        if (m == Mode.Withdraw) return abi.encodeCall(ICampaign.withdraw, ());
        if (m == Mode.Claim) return abi.encodeCall(ICampaign.claimDeposits, ());
        // Pledge: a fixed, well-formed envelope and compressed member key.
        return abi.encodeCall(ICampaign.pledge, (hex"01", abi.encodePacked(bytes1(0x02), bytes32(uint256(1)))));
    }
}
