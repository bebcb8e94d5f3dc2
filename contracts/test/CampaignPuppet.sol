// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.28;

import {ICampaign} from "../interfaces/ICampaign.sol";

/// @title CampaignPuppet
/// @notice Test-only base: a contract that pledges to one campaign (or is its beneficiary),
///         driven by the account that deployed it. Hostile pledgers extend it with their
///         own `receive()`.
abstract contract CampaignPuppet {
    // ─── Errors ─────────────────────────────────────────────────────────────────────

    /// @notice Only the deployer may drive the puppet.
    error PuppetNotOwner(address caller);

    // ─── Immutables ─────────────────────────────────────────────────────────────────

    /// @notice The campaign this contract pledges to.
    ICampaign public immutable campaign;
    /// @notice The account that deployed it.
    address public immutable owner;

    // ─── Constructor ────────────────────────────────────────────────────────────────

    /// @notice Aims the puppet at `campaign_`; any value sent funds its pledges.
    constructor(ICampaign campaign_) payable {
        campaign = campaign_;
        owner = msg.sender;
    }

    // ─── External ───────────────────────────────────────────────────────────────────

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

    /// @notice Asks the campaign for this contract's refund; its revert bubbles up unchanged.
    function refund() external {
        _onlyOwner();
        campaign.refund();
    }

    /// @notice Claims the forfeited deposits, when this contract is the beneficiary.
    function claimDeposits() external {
        _onlyOwner();
        campaign.claimDeposits();
    }

    // ─── Internal ───────────────────────────────────────────────────────────────────

    function _onlyOwner() internal view {
        if (msg.sender != owner) revert PuppetNotOwner(msg.sender);
    }
}
